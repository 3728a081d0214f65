"""Reference solutions to chapter 01's exercises (spoilers!). The test-suite checks that each passes its grader."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def grpo_advantages(rewards: "torch.Tensor", group_size: int, eps: float = 1e-4) -> "torch.Tensor":
    """01.1: ``(r - mean_G) / (std_G + eps)`` per prompt group, ``std_G`` with Bessel's correction.

    The ``eps`` is the zero-variance guard: an all-equal group has numerator 0, so its advantages are 0.
    """
    g = rewards.float().view(-1, group_size)
    return ((g - g.mean(1, keepdim=True)) / (g.std(1, keepdim=True) + eps)).reshape(-1)


def optimal_constant_baseline(rewards: "torch.Tensor", scores: "torch.Tensor") -> float:
    """01.2: ``b* = sum_i r_i ||g_i||^2 / sum_i ||g_i||^2``, the constant minimising ``sum_i ||(r_i - b) g_i||^2``.

    ``rewards`` ``[B]``, ``scores`` ``[B, N]`` per-sample score vectors ``grad log pi(y_i | x_i)``.
    """
    sq = (scores.double() ** 2).sum(-1)
    return float((rewards.double() * sq).sum() / sq.sum())


def token_level_loss(logprobs: "torch.Tensor", mask: "torch.Tensor", advantages: "torch.Tensor") -> "torch.Tensor":
    """01.3: DAPO's aggregation ``-sum_{b,t} A_b log pi(y_bt) / sum_{b,t} mask_bt``, advantages detached."""
    m = mask.to(logprobs.dtype)
    return -(advantages.detach()[:, None] * logprobs * m).sum() / m.sum().clamp(min=1)


def signal_probability(p: float, group_size: int) -> float:
    """01.6: the G samples of a prompt with success rate p disagree unless all fail or all succeed."""
    return 1.0 - (1.0 - p) ** group_size - p**group_size
