"""Reference solutions to chapter 01's exercises (spoilers!). The test-suite checks that each passes its grader."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

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


# ---------------------------------------------------------------- typical wrong answers (each must fail its grader)
def _grouped(r: "torch.Tensor", G: int) -> "torch.Tensor":
    return r.float().view(-1, G)


WRONG: dict[str, list[Callable[..., Any]]] = {
    # the population std; no zero-variance guard (NaN); the batch's std; the group mean without the std
    "01.1": [
        lambda r, G: ((_grouped(r, G) - _grouped(r, G).mean(1, keepdim=True))
                      / (_grouped(r, G).std(1, unbiased=False, keepdim=True) + 1e-4)).reshape(-1),
        lambda r, G: ((_grouped(r, G) - _grouped(r, G).mean(1, keepdim=True)) / _grouped(r, G).std(1, keepdim=True)).reshape(-1),
        lambda r, G: ((_grouped(r, G) - _grouped(r, G).mean(1, keepdim=True)) / (r.float().std() + 1e-4)).reshape(-1),
        lambda r, G: (_grouped(r, G) - _grouped(r, G).mean(1, keepdim=True)).reshape(-1),
    ],
    # the mean reward; weights by the norm instead of the squared norm; the norm of the mean score vector
    "01.2": [
        lambda r, s: float(r.mean()),
        lambda r, s: float((r * s.norm(dim=-1)).sum() / s.norm(dim=-1).sum()),
        lambda r, s: float((r[:, None] * s).sum(0).norm() ** 2 / (s.sum(0).norm() ** 2)),
    ],
    # GRPO's per-sequence mean; plain REINFORCE's sum per sequence; padding counted; advantage not detached
    "01.3": [
        lambda lp, m, a: -((a[:, None] * lp * m).sum(1) / m.sum(1)).mean(),
        lambda lp, m, a: -(a.detach()[:, None] * lp * m).sum() / lp.shape[0],
        lambda lp, m, a: -(a.detach()[:, None] * lp * m).sum() / m.numel(),
        lambda lp, m, a: -(a[:, None] * lp * m).sum() / m.sum(),
    ],
    # only "all wrong" counts as no signal; the chance for two samples only
    "01.6": [
        lambda p, G: 1 - (1 - p) ** G,
        lambda p, G: 2 * p * (1 - p),
    ],
}
