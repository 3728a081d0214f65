"""Reference solutions to chapter 05's exercises (spoilers!). The test-suite checks that each passes its grader."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:
    import torch


def flip_probability(delta: float, tau: float) -> float:
    """05.1: ``P(b > a) = sigmoid(-delta / tau)`` for ``delta = r*(a) - r*(b)`` (a wrong label when ``delta > 0``),
    written so that a tiny ``tau`` underflows to 0 instead of overflowing."""
    z = -delta / tau
    return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))


def plackett_luce_nll(scores: "torch.Tensor", order: Sequence[int]) -> float:
    """05.2: ``-sum_k [s_(k) - logsumexp(s_(k), ..., s_(K))]`` with ``s_(k)`` the score of the k-th ranked item."""
    import torch

    s = scores.double()[list(order)]
    tail = torch.logcumsumexp(s.flip(0), 0).flip(0)   # log sum_{j >= k} exp s_(j)
    return float(-(s - tail).sum())


def center_per_prompt(rewards: "torch.Tensor", prompt_ids: "torch.Tensor") -> "torch.Tensor":
    """05.3: ``r_i - mean{r_j : prompt_j = prompt_i}`` (``[N]`` rewards, ``[N]`` integer prompt ids in any order)."""
    import torch

    _, inv = torch.unique(prompt_ids, return_inverse=True)
    n = int(inv.max()) + 1
    sums = torch.zeros(n, dtype=rewards.dtype).index_add_(0, inv, rewards)
    counts = torch.zeros(n, dtype=rewards.dtype).index_add_(0, inv, torch.ones_like(rewards))
    return rewards - (sums / counts)[inv]


# ---------------------------------------------------------------- typical wrong answers (each must fail its grader)
def _pl_full_softmax(s, order):  # a full softmax for every position
    import torch

    return float(-sum(s[i] - torch.logsumexp(s, 0) for i in order))


def _pl_ignore_order(s, order):  # the scores' own order, not the ranking
    import torch

    tail = torch.logcumsumexp(s.double().flip(0), 0).flip(0)
    return float(-(s.double() - tail).sum())


def _pl_reversed_tail(s, order):  # logsumexp over the items ranked *above* (a cumulative sum the wrong way)
    import torch

    x = s.double()[list(order)]
    return float(-(x - torch.logcumsumexp(x, 0)).sum())


def _center_zscore(r, ids):  # z-scoring per prompt
    out = r.clone()
    for i in ids.unique():
        m = ids == i
        out[m] = (r[m] - r[m].mean()) / (r[m].std() if m.sum() > 1 else 1.0)
    return out


WRONG: dict[str, list[Callable[..., Any]]] = {
    # the probability of the better one; tau multiplies; the textbook formula, which overflows at a tiny tau
    "05.1": [
        lambda d, t: 1 / (1 + math.exp(-d / t)),
        lambda d, t: 1 / (1 + math.exp(d * t)),
        lambda d, t: 1 / (1 + math.exp(d / t)),  # right formula, overflows at tau 1e-3
    ],
    "05.2": [_pl_full_softmax, _pl_ignore_order, _pl_reversed_tail],
    # the batch mean; z-scoring per prompt; per-prompt mean assuming sorted, contiguous groups of 2
    "05.3": [
        lambda r, ids: r - r.mean(),
        _center_zscore,
        lambda r, ids: (r.view(-1, 2) - r.view(-1, 2).mean(1, keepdim=True)).reshape(-1),
    ],
}
