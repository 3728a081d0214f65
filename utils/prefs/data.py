"""Preference data for direct alignment (survey §3.2.6, §3.2.9): on-policy pairs and rankings, perplexity filtering.

* :func:`sequence_logps` - summed ``log π(y|x)`` of completions and their token counts (differentiable): the input of
  every preference loss in :mod:`utils.prefs.losses`.
* :func:`sample_groups` - ``k`` samples per prompt from a policy, scored by the world's hidden true reward
  (:func:`utils.world.preferences.true_reward`) or any ``reward(problem, text)``.
* :func:`best_worst_pairs` / :func:`group_rankings` - the pairs (best vs worst sample of a prompt) and the rankings
  (distinct-reward samples, best first) that DPO and its listwise variant train on.
* :func:`perplexity` / :func:`perplexity_threshold` / :func:`filter_pairs` - §3.2.6's filter: keep a pair only if both
  responses have a perplexity under the reference ``ρ`` below a quantile of ``ρ``'s own samples' perplexities.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..lm.batches import sft_batch
from ..lm.generation import build_prompts, sample
from ..lm.logprobs import sequence_nll
from ..reward_models.train import Ranking
from ..sft.data import conversation
from ..world import Problem
from ..world.preferences import PreferencePair, true_reward
from ..world.rewards import completion_text

Group = list[tuple[str, float]]  # one prompt's samples: (text, reward)


def sequence_logps(
    model: PreTrainedModel, tok: PreTrainedTokenizerBase, problems: Sequence[Problem], completions: Sequence[str],
) -> tuple[torch.Tensor, torch.Tensor]:
    """``([B] log π(y_i | x_i), [B] number of tokens)`` of each completion's assistant turn (end token included),
    after problem ``i``'s chat prompt - one forward, *with* gradients (call under ``torch.no_grad()`` to measure).

    The same tokens and sum as :func:`utils.reward_models.model.sequence_logprobs`, on the model's device.
    """
    if len(problems) != len(completions):
        raise ValueError(f"{len(problems)} problems but {len(completions)} completions")
    device = next(model.parameters()).device
    batch = sft_batch(tok, [conversation(p, completion_text(c)) for p, c in zip(problems, completions)], system=True)
    logits = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)).logits
    nll, n = sequence_nll(logits, batch["labels"].to(device))
    return -nll, n


@torch.no_grad()
def perplexity(
    model: PreTrainedModel, tok: PreTrainedTokenizerBase, problems: Sequence[Problem], completions: Sequence[str],
    batch_size: int = 16,
) -> torch.Tensor:
    """``[B]`` ``PP(y) = exp(-1/T Σ_t log ρ(y_t | y_<t, x))`` under ``model`` (survey §3.2.6), on the CPU.

    ``batch_size`` rows per forward: the fp32 log-softmax over a 49k vocabulary is ~4 GB at 64 rows of 350 tokens."""
    was = model.training
    model.eval()
    out = []
    for s in range(0, len(problems), batch_size):
        lp, n = sequence_logps(model, tok, problems[s : s + batch_size], completions[s : s + batch_size])
        out.append(torch.exp(-lp / n.clamp(min=1)).cpu())
    model.train(was)
    return torch.cat(out) if out else torch.zeros(0)


def perplexity_threshold(reference_ppl: torch.Tensor, quantile: float = 0.95) -> float:
    """The filter's threshold: the ``quantile`` of the perplexities of the reference's *own* samples."""
    if not 0 < quantile <= 1:
        raise ValueError("quantile must be in (0, 1]")
    return float(torch.quantile(reference_ppl.double(), quantile))


def filter_pairs(
    pairs: Sequence[PreferencePair], ppl_chosen: torch.Tensor, ppl_rejected: torch.Tensor, threshold: float
) -> list[PreferencePair]:
    """The pairs whose chosen *and* rejected responses have perplexity ``<= threshold``."""
    keep = (ppl_chosen <= threshold) & (ppl_rejected <= threshold)
    return [p for p, k in zip(pairs, keep.tolist()) if k]


def sample_groups(
    policy: PreTrainedModel, tok: PreTrainedTokenizerBase, problems: Sequence[Problem], k: int, max_new_tokens: int,
    seed: int = 0, temperature: float = 1.0, batch_size: int = 256,
    reward: Callable[[Problem, str], float] = true_reward,
) -> list[Group]:
    """``k`` samples per problem, each with its reward: ``out[i]`` is ``[(text, reward)] * k`` for ``problems[i]``."""
    s = sample(policy, tok, build_prompts(tok, problems), n=k, max_new_tokens=max_new_tokens, temperature=temperature,
               seed=seed, batch_size=batch_size)
    return [[(t, float(reward(p, t))) for t in s.texts[i * k : (i + 1) * k]] for i, p in enumerate(problems)]


def best_worst_pairs(problems: Sequence[Problem], groups: Sequence[Group], min_gap: float = 1e-9) -> list[PreferencePair]:
    """One pair per problem: its highest-reward sample (chosen) against its lowest (rejected); problems whose
    samples all score within ``min_gap`` are skipped (no preference to learn)."""
    out = []
    for p, g in zip(problems, groups):
        best, worst = max(g, key=lambda x: x[1]), min(g, key=lambda x: x[1])
        if best[1] - worst[1] > min_gap:
            out.append(PreferencePair(p, best[0], worst[0], best[1], worst[1]))
    return out


def group_rankings(problems: Sequence[Problem], groups: Sequence[Group], min_gap: float = 1e-9) -> list[Ranking]:
    """One ranking per problem of its samples with *distinct* rewards (one sample per reward level), best first;
    problems with fewer than two levels are skipped. Rankings may have different lengths (pad for a batch)."""
    out = []
    for p, g in zip(problems, groups):
        levels: list[tuple[str, float]] = []
        for text, r in sorted(g, key=lambda x: -x[1]):
            if not levels or levels[-1][1] - r > min_gap:
                levels.append((text, r))
        if len(levels) >= 2:
            out.append(Ranking(p, tuple(t for t, _ in levels), tuple(r for _, r in levels)))
    return out
