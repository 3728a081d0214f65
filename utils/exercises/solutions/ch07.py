"""Reference solutions to chapter 07's exercises (spoilers!). The test-suite checks that each passes its grader."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

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


# ---------------------------------------------------------------- typical wrong answers (each must fail its grader)
def _gae_bootstraps_padding(r, v, m, gamma, lam):  # bootstrapping from the padding's values
    import torch

    adv = torch.zeros_like(v)
    nxt = torch.zeros_like(v[:, 0])
    for t in reversed(range(v.shape[1])):
        nv = v[:, t + 1] if t + 1 < v.shape[1] else torch.zeros_like(nxt)
        nxt = (r[:, t] + gamma * nv - v[:, t] + gamma * lam * nxt) * m[:, t]
        adv[:, t] = nxt
    return adv


def _clipped(lp, old, a, eps, how):
    import torch

    ratio = (lp - old.detach()).exp()
    c = ratio.clamp(1 - eps, 1 + eps) * a
    return {"max": torch.maximum(ratio * a, c), "clip": c, "min": torch.minimum(ratio * a, c)}[how]


def _ppo_log_ratio(lp, old, a, m, eps):  # the ratio against the log-probs' difference
    import torch

    return -(torch.minimum((lp - old) * a, (lp - old).clamp(-eps, eps) * a) * m).sum() / m.sum()


def _ev_squared_correlation(v, r, m):  # the squared correlation
    import torch

    return float(torch.corrcoef(torch.stack([v[m.bool()], r[m.bool()]]))[0, 1] ** 2)


WRONG: dict[str, list[Callable[..., Any]]] = {
    "07.1": [
        lambda r, v, m, g, lam: gae(r, v, m, g, 1.0),  # lam ignored (Monte-Carlo advantage)
        _gae_bootstraps_padding,
        lambda r, v, m, g, lam: gae(r, v, m, g, lam) + v * m,  # returning A + V
    ],
    # max instead of min; the clipped term only; a per-sequence mean; the ratio against the log-probs' difference
    "07.2": [
        lambda lp, old, a, m, eps: -(_clipped(lp, old, a, eps, "max") * m).sum() / m.sum(),
        lambda lp, old, a, m, eps: -(_clipped(lp, old, a, eps, "clip") * m).sum() / m.sum(),
        lambda lp, old, a, m, eps: -((_clipped(lp, old, a, eps, "min") * m).sum(-1) / m.sum(-1)).mean(),
        _ppo_log_ratio,
    ],
    # the mask ignored; Var(V) / Var(R); the squared correlation
    "07.3": [
        lambda v, r, m: float(1 - (r - v).var() / r.var()),
        lambda v, r, m: float(v[m.bool()].var() / r[m.bool()].var()),
        _ev_squared_correlation,
    ],
}
