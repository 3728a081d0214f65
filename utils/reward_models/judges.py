"""AI judges and AI-labelled preference data (RLAIF, survey §3.2.4, §7; Lee et al. 2023, arXiv 2309.00267).

RLAIF replaces the human annotator by a model. Here the annotator is a language model's own likelihood
(a *self-judge*: "how plausible do I find this answer?"), and the pieces are:

* :func:`likelihood_judge` - ``[B]`` log-likelihood of each completion under a causal LM, summed or averaged
  per token (the sum charges every token, the mean does not).
* :func:`label_pairs` - turn two lists of completions and any scores of them into Bradley-Terry-labelled
  :class:`~utils.world.preferences.PreferencePair` s (an AI annotator when the scores are a judge's, a
  "human" one when they are the hidden true reward), keeping the **true** rewards for evaluation.
* :func:`judge_agreement` - how often a judge orders a pair as the true reward does; :func:`preference_rate`
  - how often it prefers the first of two answers (a bias probe: the longer of two equally correct answers).
* :func:`probe_pairs` - such probe pairs from the world's candidate kinds (e.g. ``verbose`` vs ``reference``).

Imports only :mod:`utils.lm`, :mod:`utils.world` and the package's own modules.
"""
from __future__ import annotations

import math
import random
from typing import Any, Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..lm.generation import build_prompts
from ..lm.logprobs import completion_logprobs
from ..world import Problem, completion_text
from ..world.preferences import PreferencePair, candidate, true_reward


def _encode_side(tok: PreTrainedTokenizerBase, texts: Sequence[str], side: str) -> tuple[torch.Tensor, torch.Tensor]:
    old = tok.padding_side
    tok.padding_side = side
    enc = tok(list(texts), return_tensors="pt", padding=True, add_special_tokens=False)
    tok.padding_side = old
    return enc["input_ids"], enc["attention_mask"]


@torch.no_grad()
def likelihood_judge(
    model: PreTrainedModel, tok: PreTrainedTokenizerBase, problems: Sequence[Problem], completions: Sequence[Any],
    per_token: bool = False, batch_size: int = 128,
) -> torch.Tensor:
    """``[B]`` score of ``completions[i]`` for ``problems[i]``: ``log pi(y + <end> | prompt)`` under ``model``.

    ``per_token=False`` sums the token log-probs (every extra token costs: a pull towards short answers, which
    other features can outweigh - measure it, as notebook 08 does); ``per_token=True`` averages them (a long
    answer made of easy tokens scores well). The end token is included,
    so an answer cut off mid-way pays for the unlikely stop. Any text is accepted (malformed answers simply get
    low scores); returns CPU fp32.
    """
    if len(problems) != len(completions):
        raise ValueError(f"{len(problems)} problems but {len(completions)} completions")
    device = next(model.parameters()).device
    prompts = build_prompts(tok, problems)
    texts = [completion_text(c) + tok.eos_token for c in completions]
    was = model.training
    model.eval()
    out = []
    for s in range(0, len(texts), batch_size):
        p_ids, p_mask = _encode_side(tok, prompts[s : s + batch_size], "left")
        c_ids, c_mask = _encode_side(tok, texts[s : s + batch_size], "right")
        lp = completion_logprobs(model, p_ids.to(device), p_mask.to(device), c_ids.to(device), c_mask.to(device)).logprobs
        m = c_mask.to(device).float()
        total = (lp * m).sum(-1)
        out.append((total / m.sum(-1).clamp(min=1) if per_token else total).float().cpu())
    model.train(was)
    return torch.cat(out) if out else torch.zeros(0)


def label_pairs(
    problems: Sequence[Problem], first: Sequence[Any], second: Sequence[Any], scores_first: torch.Tensor | Sequence[float],
    scores_second: torch.Tensor | Sequence[float], tau: float = 0.2, seed: int = 0, skip_ties: bool = True,
) -> list[PreferencePair]:
    """Bradley-Terry labels ``P(first > second) = sigmoid((s_1 - s_2) / tau)`` from any annotator's scores.

    ``problems``, ``first``, ``second``: ``B`` each; ``scores_*``: ``[B]``. ``chosen_reward`` and
    ``rejected_reward`` of each pair are the **true** rewards (:func:`~utils.world.preferences.true_reward`), so
    an AI annotator's labels can be checked against the truth. Pairs with equal scores are skipped
    (``skip_ties``), as are pairs of identical texts.
    """
    if tau <= 0:
        raise ValueError("tau must be positive")
    s1, s2 = (torch.as_tensor(s, dtype=torch.float64).reshape(-1) for s in (scores_first, scores_second))
    if not (len(problems) == len(first) == len(second) == len(s1) == len(s2)):
        raise ValueError(f"lengths differ: {len(problems)} problems, {len(first)} and {len(second)} completions, "
                         f"{len(s1)} and {len(s2)} scores")
    rng = random.Random(seed)
    out = []
    for p, a, b, x, y in zip(problems, first, second, s1.tolist(), s2.tolist()):
        a, b = completion_text(a), completion_text(b)
        if a == b or (skip_ties and abs(x - y) < 1e-9):
            continue
        ra, rb = true_reward(p, a), true_reward(p, b)
        z = max(-60.0, min(60.0, (x - y) / tau))
        if rng.random() < 1 / (1 + math.exp(-z)):
            out.append(PreferencePair(p, a, b, ra, rb))
        else:
            out.append(PreferencePair(p, b, a, rb, ra))
    return out


def judge_agreement(scores_a: torch.Tensor, scores_b: torch.Tensor, gold_a: torch.Tensor, gold_b: torch.Tensor) -> float:
    """Fraction of pairs (``[B]`` each) the judge orders as the gold reward does; gold ties are skipped and
    judge ties count one half. ``nan`` when every pair is a gold tie."""
    sa, sb, ga, gb = (torch.as_tensor(t, dtype=torch.float64).reshape(-1) for t in (scores_a, scores_b, gold_a, gold_b))
    if not (sa.shape == sb.shape == ga.shape == gb.shape):
        raise ValueError("judge_agreement needs four [B] tensors of one length")
    keep = (ga - gb).abs() > 1e-9
    if not keep.any():
        return float("nan")
    agree = torch.sign(sa - sb)[keep] * torch.sign(ga - gb)[keep]
    return float(((agree > 0).double() + 0.5 * (agree == 0).double()).mean())


def preference_rate(scores_a: torch.Tensor, scores_b: torch.Tensor) -> float:
    """Fraction of pairs (``[B]`` each) in which the judge prefers ``a`` (ties count one half)."""
    sa, sb = (torch.as_tensor(t, dtype=torch.float64).reshape(-1) for t in (scores_a, scores_b))
    if sa.shape != sb.shape or sa.numel() == 0:
        raise ValueError("preference_rate needs two non-empty [B] tensors of one length")
    return float(((sa > sb).double() + 0.5 * (sa == sb).double()).mean())


def probe_pairs(problems: Sequence[Problem], kind_a: str = "verbose", kind_b: str = "reference", seed: int = 0
                ) -> tuple[list[str], list[str]]:
    """``(a, b)``: one candidate of ``kind_a`` and one of ``kind_b`` per problem (kinds of
    :data:`utils.world.preferences.KINDS`), for bias probes such as ``verbose`` vs ``reference`` (both correct,
    one padded with filler)."""
    rng = random.Random(seed)
    a = [candidate(p, kind_a, rng) for p in problems]
    b = [candidate(p, kind_b, rng) for p in problems]
    return a, b
