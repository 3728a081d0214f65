"""Reference solutions to chapter 09's exercises (spoilers!). The test-suite checks that each passes its grader."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def dpo_loss(chosen_logps: torch.Tensor, rejected_logps: torch.Tensor, ref_chosen_logps: torch.Tensor,
             ref_rejected_logps: torch.Tensor, beta: float) -> torch.Tensor:
    """09.1: ``[B]`` ``-log σ(β[(log π(y_w) - log π_ref(y_w)) - (log π(y_l) - log π_ref(y_l))])``; log 2 at the reference."""
    return -F.logsigmoid(beta * ((chosen_logps - ref_chosen_logps) - (rejected_logps - ref_rejected_logps)))


def orpo_loss(chosen_nll: torch.Tensor, chosen_mean_logps: torch.Tensor, rejected_mean_logps: torch.Tensor, lam: float) -> torch.Tensor:
    """09.2: ``[B]`` ``NLL(y_w) - λ log σ(log odds(y_w) - log odds(y_l))``, ``log odds = m - log(1 - e^m)`` computed with
    ``expm1`` so that it stays finite as the mean log-prob ``m`` approaches 0."""
    def log_odds(m: torch.Tensor) -> torch.Tensor:
        return m - torch.log(-torch.expm1(m.clamp(max=-1e-6)))
    return chosen_nll - lam * F.logsigmoid(log_odds(chosen_mean_logps) - log_odds(rejected_mean_logps))


def plackett_luce_nll(scores: torch.Tensor) -> torch.Tensor:
    """09.3: the mean over rows of ``-Σ_k [s_k - log Σ_{j>=k} e^{s_j}]`` for ``[B, K]`` scores, best first."""
    tail = torch.logcumsumexp(scores.flip(-1), dim=-1).flip(-1)
    return -(scores - tail).sum(-1).mean()
