"""Preference data for direct alignment (survey §3.2.6, §3.2.9): on-policy pairs and rankings, perplexity filtering.

* :class:`SamplePairs` / :func:`sample_pairs` / :func:`correct_failed_pairs` - pairs of *sampled* completions
  (their token ids), e.g. a correct against a failed sample of one problem (chapter 11's DPO baseline).
* :func:`sample_groups` - ``k`` samples per prompt from a policy, scored by the world's hidden true reward
  (:func:`utils.world.preferences.true_reward`) or any ``reward(problem, text)``.
* :func:`best_worst_pairs` / :func:`group_rankings` - the pairs (best vs worst sample of a prompt) and the rankings
  (distinct-reward samples, best first) that DPO and its listwise variant train on.
* :func:`perplexity` / :func:`perplexity_threshold` / :func:`filter_pairs` - §3.2.6's filter: keep a pair only if both
  responses have a perplexity under the reference ``ρ`` below a quantile of ``ρ``'s own samples' perplexities.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..lm.generation import build_prompts, sample
from ..lm.logprobs import sequence_logprobs
from ..lm.samples import Samples
from ..reward_models.model import completion_batch
from ..reward_models.train import Ranking
from ..world import Problem
from ..world.preferences import PreferencePair, true_reward

Group = list[tuple[str, float]]  # one prompt's samples: (text, reward)


@dataclass
class SamplePairs:
    """Preference pairs as sampled token ids: row ``i`` of ``chosen`` is preferred to row ``i`` of ``rejected`` (the
    same prompt). What :func:`utils.prefs.train.train_preferences` trains on when the completions were sampled
    (their exact tokens, no re-tokenization)."""

    chosen: Samples
    rejected: Samples

    def __post_init__(self) -> None:
        if len(self.chosen.texts) != len(self.rejected.texts):
            raise ValueError(f"{len(self.chosen.texts)} chosen but {len(self.rejected.texts)} rejected rows")

    def __len__(self) -> int:
        return len(self.chosen.texts)


def sample_pairs(samples: Samples, pairs: Sequence[tuple[int, int]]) -> SamplePairs:
    """The :class:`SamplePairs` of ``(chosen row, rejected row)`` index pairs into ``samples``."""
    if not pairs:
        raise ValueError("sample_pairs needs at least one (chosen, rejected) pair")
    return SamplePairs(samples.select([c for c, _ in pairs]), samples.select([r for _, r in pairs]))


def correct_failed_pairs(rewards: torch.Tensor, k: int, max_per_problem: int | None = None,
                         seed: int = 0) -> list[tuple[int, int]]:
    """``(chosen row, rejected row)`` pairs of ``[B]`` 0/1 verdicts of ``k`` consecutive samples per problem: a
    correct and a failed sample of the same problem.

    Per problem, its correct and failed rows are shuffled and zipped (``min(#correct, #failed)`` pairs, at most
    ``max_per_problem``): each sample is used at most once. Problems whose samples all agree give none.
    """
    rng = random.Random(seed)
    out: list[tuple[int, int]] = []
    r = rewards.tolist()
    for start in range(0, len(r), k):
        rows = range(start, min(start + k, len(r)))
        good, bad = [i for i in rows if r[i] == 1.0], [i for i in rows if r[i] != 1.0]
        rng.shuffle(good); rng.shuffle(bad)
        pairs = list(zip(good, bad))
        out += pairs[:max_per_problem] if max_per_problem is not None else pairs
    return out


@torch.no_grad()
def perplexity(
    model: PreTrainedModel, tok: PreTrainedTokenizerBase, problems: Sequence[Problem], completions: Sequence[str],
    batch_size: int = 16,
) -> torch.Tensor:
    """``[B]`` ``PP(y) = exp(-1/T Σ_t log ρ(y_t | y_<t, x))`` under ``model`` (survey §3.2.6), on the CPU.

    ``batch_size`` rows per forward: the fp32 log-softmax over a 49k vocabulary is ~4 GB at 64 rows of 350 tokens."""
    if not len(problems):
        return torch.zeros(0)
    was = model.training
    model.eval()
    lp, n = sequence_logprobs(model, completion_batch(tok, problems, completions), batch_size)
    model.train(was)
    return torch.exp(-lp / n.clamp(min=1)).cpu()


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
