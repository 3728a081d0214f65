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


def policy_loss(values: torch.Tensor, rewards: torch.Tensor, logp: torch.Tensor, ref_logp: torch.Tensor,
                mask: torch.Tensor, beta: float) -> torch.Tensor:
    """11.2: OREO's policy loss: value detached, only the current token's log-ratio differentiable; mean over each
    trajectory's tokens, then over the batch."""
    m = mask.to(logp.dtype)
    rho = (logp - ref_logp) * m
    later = rho.detach().flip(-1).cumsum(-1).flip(-1) - rho.detach()          # sum_{i > t} sg[rho_i]
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


def _policy_survey(v, r, lp, ref, m, beta):  # the survey's printed residual
    resid = (v.detach() - r[:, None] + beta * (lp - ref)) * m
    return ((resid**2).sum(-1) / m.sum(-1)).mean()


def _policy_no_detach(v, r, lp, ref, m, beta):  # no detach of the later log-ratios
    rho = (lp - ref) * m
    resid = (v.detach() - r[:, None] + beta * rho.flip(-1).cumsum(-1).flip(-1)) * m
    return ((resid**2).sum(-1) / m.sum(-1)).mean()


def _policy_value_trained(v, r, lp, ref, m, beta):  # the value not detached
    rho = (lp - ref) * m
    later = rho.detach().flip(-1).cumsum(-1).flip(-1) - rho.detach()
    resid = (v - r[:, None] + beta * rho + beta * later) * m
    return ((resid**2).sum(-1) / m.sum(-1)).mean()


def _policy_token_mean(v, r, lp, ref, m, beta):  # a token mean
    rho = (lp - ref) * m
    later = rho.detach().flip(-1).cumsum(-1).flip(-1) - rho.detach()
    resid = (v.detach() - r[:, None] + beta * rho + beta * later) * m
    return (resid**2).sum() / m.sum()


WRONG: dict[str, list[Callable[..., Any]]] = {
    "11.1": [_targets_exclusive, _targets_unmasked, _targets_prefix, _targets_flipped],
    "11.2": [_policy_survey, _policy_no_detach, _policy_value_trained, _policy_token_mean],
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
    "11.2": [lambda v, r, lp, ref, m, beta: oreo.policy_loss(v, r, lp, ref, m, beta)],
}
