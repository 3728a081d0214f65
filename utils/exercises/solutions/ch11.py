"""Reference solutions to chapter 11's exercises (spoilers!). The test-suite checks that each passes its grader."""
from __future__ import annotations

import torch


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
