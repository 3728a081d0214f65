"""Reference solutions to chapter 09's exercises (spoilers!). The test-suite checks that each passes its grader."""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from ...prefs import losses
from ...reward_models import plackett_luce_loss


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


# ---------------------------------------------------------------- typical wrong answers (each must fail its grader)
def _orpo_unstable(n, mw, ml, lam):  # unstable log(1 - exp(m))
    def log_odds(m):
        return m - torch.log(1 - torch.exp(m))

    return n - lam * F.logsigmoid(log_odds(mw) - log_odds(ml))


WRONG: dict[str, list[Callable[..., Any]]] = {
    # the survey's sigma without -log; no beta; chosen/rejected swapped; the batch mean; logps without the reference
    "09.1": [
        lambda w, l, rw, rl, b: torch.sigmoid(b * ((w - rw) - (l - rl))),
        lambda w, l, rw, rl, b: -F.logsigmoid((w - rw) - (l - rl)),
        lambda w, l, rw, rl, b: -F.logsigmoid(b * ((l - rl) - (w - rw))),
        lambda w, l, rw, rl, b: dpo_loss(w, l, rw, rl, b).mean(),
        lambda w, l, rw, rl, b: -F.logsigmoid(b * (w - l)),
    ],
    # log-prob ratio instead of odds; the survey's form; no NLL; unstable log(1 - exp(m))
    "09.2": [
        lambda n, mw, ml, lam: n - lam * F.logsigmoid(mw - ml),
        lambda n, mw, ml, lam: -(mw - torch.logaddexp(mw, ml)),
        lambda n, mw, ml, lam: orpo_loss(n, mw, ml, lam) - n,
        _orpo_unstable,
    ],
    # the survey's full denominator; summing over rows; forgetting the reversal (head sums)
    "09.3": [
        lambda s: -(s - torch.logsumexp(s, -1, keepdim=True)).sum(-1).mean(),
        lambda s: plackett_luce_nll(s) * s.shape[0],
        lambda s: -(s - torch.logcumsumexp(s, -1)).sum(-1).mean(),
    ],
}



#: the course library's own versions, which pass the graders too
ALSO_RIGHT: dict[str, list[Callable[..., Any]]] = {
    "09.1": [losses.dpo_loss], "09.2": [losses.orpo_loss], "09.3": [plackett_luce_loss],
}
