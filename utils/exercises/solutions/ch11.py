"""Reference solutions to chapter 11's exercises (spoilers!). The test-suite checks that each passes its grader."""
from __future__ import annotations

from typing import Any, Callable

import torch

from ...rl import oreo


def soft_targets(rewards: torch.Tensor, log_ratio: torch.Tensor, mask: torch.Tensor, beta: float) -> torch.Tensor:
    """11.1: ``[B, T]`` ``R - beta * sum_{i >= t} log_ratio_i`` over real tokens, 0 off the mask."""
    m = mask.to(log_ratio.dtype)
    suffix = (log_ratio * m).flip(-1).cumsum(-1).flip(-1)
    return (rewards.to(log_ratio.dtype)[:, None] - beta * suffix) * m


def step_policy_loss(values: torch.Tensor, rewards: torch.Tensor, logp: torch.Tensor, ref_logp: torch.Tensor,
                     step: torch.Tensor, beta: float) -> torch.Tensor:
    """11.2: step-level OREO's policy loss. ``values [B, S]``: V at the state before each step; ``step [B, T]``: the
    step of each token (-1 on padding). A step's log-ratio is the sum over its tokens; the residual of step k is
    ``sg[V_k] - R + beta rho_k + beta sum_{j > k} sg[rho_j]``; mean over each trajectory's steps, then the batch."""
    B, S = values.shape
    real_tok = (step >= 0).to(logp.dtype)
    idx = step.clamp(min=0)
    rho = torch.zeros(B, S, dtype=logp.dtype).scatter_add(1, idx, (logp - ref_logp) * real_tok)       # [B, S]
    m = (torch.zeros(B, S, dtype=logp.dtype).scatter_add(1, idx, real_tok) > 0).to(logp.dtype)        # steps present
    rho_d = rho.detach() * m
    later = rho_d.flip(-1).cumsum(-1).flip(-1) - rho_d                                                # sum_{j > k} sg[rho_j]
    resid = (values.detach() - rewards.to(logp.dtype)[:, None] + beta * rho + beta * later) * m
    return ((resid**2).sum(-1) / m.sum(-1).clamp(min=1)).mean()


def soft_value(p: torch.Tensor, r: torch.Tensor, beta: float) -> torch.Tensor:
    """11.3: ``beta * log sum_a p_a exp(r_a / beta)`` via log-sum-exp (stable for small beta)."""
    p, r = torch.as_tensor(p, dtype=torch.float64), torch.as_tensor(r, dtype=torch.float64)
    keep = p > 0
    return beta * torch.logsumexp(p[keep].log() + r[keep] / beta, 0)


# ---------------------------------------------------------------- typical wrong answers (each must fail its grader)
def _targets_exclusive(r, lr, m, beta):  # the sum from t + 1
    return soft_targets(r, lr, m, beta) + beta * lr * m


def _targets_unmasked(r, lr, m, beta):  # no mask on the padding
    return r[:, None] - beta * lr.flip(-1).cumsum(-1).flip(-1)


def _targets_prefix(r, lr, m, beta):  # a prefix sum
    return (r[:, None] - beta * (lr * m).cumsum(-1)) * m


def _targets_flipped(r, lr, m, beta):  # the sign of the KL term flipped
    return 2 * r[:, None] * m - soft_targets(r, lr, m, beta)


def _step_parts(v, r, lp, ref, step, beta, reduce="sum"):
    B, S = v.shape
    real = (step >= 0).to(lp.dtype)
    idx = step.clamp(min=0)
    rho = torch.zeros(B, S, dtype=lp.dtype).scatter_add(1, idx, (lp - ref) * real)
    cnt = torch.zeros(B, S, dtype=lp.dtype).scatter_add(1, idx, real)
    m = (cnt > 0).to(lp.dtype)
    if reduce == "mean":
        rho = rho / cnt.clamp(min=1)
    return rho, m


def _step_mean_ratio(v, r, lp, ref, step, beta):  # a step's log-ratio as the mean of its tokens'
    rho, m = _step_parts(v, r, lp, ref, step, beta, "mean")
    later = (rho.detach() * m).flip(-1).cumsum(-1).flip(-1) - rho.detach() * m
    resid = (v.detach() - r[:, None] + beta * rho + beta * later) * m
    return ((resid**2).sum(-1) / m.sum(-1)).mean()


def _step_no_detach(v, r, lp, ref, step, beta):  # the later steps' log-ratios not detached
    rho, m = _step_parts(v, r, lp, ref, step, beta)
    resid = (v.detach() - r[:, None] + beta * (rho * m).flip(-1).cumsum(-1).flip(-1)) * m
    return ((resid**2).sum(-1) / m.sum(-1)).mean()


def _step_value_trained(v, r, lp, ref, step, beta):  # the value not detached
    rho, m = _step_parts(v, r, lp, ref, step, beta)
    later = (rho.detach() * m).flip(-1).cumsum(-1).flip(-1) - rho.detach() * m
    resid = (v - r[:, None] + beta * rho + beta * later) * m
    return ((resid**2).sum(-1) / m.sum(-1)).mean()


def _step_pooled(v, r, lp, ref, step, beta):  # one mean over every step of the batch
    rho, m = _step_parts(v, r, lp, ref, step, beta)
    later = (rho.detach() * m).flip(-1).cumsum(-1).flip(-1) - rho.detach() * m
    resid = (v.detach() - r[:, None] + beta * rho + beta * later) * m
    return (resid**2).sum() / m.sum()


def _step_token_level(v, r, lp, ref, step, beta):  # token-level OREO with each token reading its step's value
    m = (step >= 0).to(lp.dtype)
    vt = v.gather(1, step.clamp(min=0))
    return oreo.policy_loss(vt, r, lp, ref, m, beta)


WRONG: dict[str, list[Callable[..., Any]]] = {
    "11.1": [_targets_exclusive, _targets_unmasked, _targets_prefix, _targets_flipped],
    "11.2": [_step_mean_ratio, _step_no_detach, _step_value_trained, _step_pooled, _step_token_level],
    # the plain mean; the max; the naive exp that overflows
    "11.3": [
        lambda p, r, beta: (p * r).sum(),
        lambda p, r, beta: r.max(),
        lambda p, r, beta: beta * torch.log((p * torch.exp(r / beta)).sum()),
    ],
}

#: the course library's own versions, which pass the graders too
ALSO_RIGHT: dict[str, list[Callable[..., Any]]] = {
    "11.1": [oreo.soft_targets],
}
