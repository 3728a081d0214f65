"""Reference solutions to chapter 05's exercises (spoilers!). The test-suite checks that each passes its grader."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

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
