"""Reference solutions to chapter 07's exercises (spoilers!). The test-suite checks that each passes its grader."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def gae(rewards: "torch.Tensor", values: "torch.Tensor", mask: "torch.Tensor", gamma: float, lam: float) -> "torch.Tensor":
    """07.1: the backward recursion ``A_t = delta_t + gamma lam A_{t+1}`` with ``V = 0`` past each row's end."""
    import torch

    m = mask.float()
    v = values.float() * m                       # padding is terminal: its value is 0
    adv = torch.zeros_like(v)
    nxt_a = torch.zeros_like(v[:, 0])
    for t in reversed(range(v.shape[1])):
        nxt_v = v[:, t + 1] if t + 1 < v.shape[1] else torch.zeros_like(nxt_a)
        delta = rewards[:, t].float() + gamma * nxt_v - v[:, t]
        nxt_a = (delta + gamma * lam * nxt_a) * m[:, t]
        adv[:, t] = nxt_a
    return adv


def ppo_clipped_loss(logp: "torch.Tensor", old_logp: "torch.Tensor", advantages: "torch.Tensor", mask: "torch.Tensor",
                     eps: float) -> "torch.Tensor":
    """07.2: ``-sum_t min(rho A, clip(rho) A) / N`` over the ``N`` real tokens, ``rho = exp(logp - old_logp)``."""
    import torch

    ratio = (logp - old_logp.detach()).exp()
    obj = torch.minimum(ratio * advantages, ratio.clamp(1 - eps, 1 + eps) * advantages)
    return -(obj * mask).sum() / mask.sum().clamp(min=1)


def explained_variance(values: "torch.Tensor", returns: "torch.Tensor", mask: "torch.Tensor") -> float:
    """07.3: ``1 - Var(R - V) / Var(R)`` over the masked tokens."""
    b = mask.bool()
    r, v = returns[b].float(), values[b].float()
    return float(1 - (r - v).var(unbiased=False) / r.var(unbiased=False))
