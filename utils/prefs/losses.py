"""Preference losses on sequence log-probabilities, each per pair (``[B]``; take ``.mean()`` for the batch loss).

Inputs are summed completion log-probs ``log π(y | x)`` (``[B]``) of the policy and of the frozen reference,
for the chosen ``y_w`` and the rejected ``y_l`` response; length-normalised methods take per-token means
and lengths. The forms follow the papers (and TRL 1.16's implementations, checked in chapter 09):

* DPO (Rafailov et al. 2023): ``-log σ(β[(log π(y_w) - log π_ref(y_w)) - (log π(y_l) - log π_ref(y_l))])``.
  The survey (§3.2.6) prints the argument without the ``-log σ``; without it the loss is unbounded below.
* IPO (Azar et al. 2023): ``(Δ - 1/(2β))²`` with ``Δ`` the difference of *per-token* log-ratios (TRL's form).
* SimPO (Meng et al. 2024): ``-log σ(β (mean log π(y_w) - mean log π(y_l)) - γ)``; no reference model.
* ORPO (Hong et al. 2024): ``NLL(y_w) - λ log σ(log odds(y_w) - log odds(y_l))`` with
  ``odds(y) = p/(1-p)`` and ``p`` the per-token *mean* probability ``exp(mean log π(y))``; no reference model.
  The survey prints a different formula.
* KTO (Ethayarajh et al. 2024): unpaired; ``1 - σ(β(log-ratio - z))`` for desirable and ``1 - σ(β(z - log-ratio))``
  for undesirable responses, ``z`` a detached batch estimate of ``KL(π || π_ref)`` (TRL's form).

Every loss here is differentiable in the policy's log-probs; the implicit reward is
:func:`utils.reward_models.model.implicit_reward`, the one definition chapters 05 and 09 share.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..reward_models.losses import plackett_luce_loss
from ..reward_models.model import implicit_reward


def dpo_loss(
    chosen_logps: torch.Tensor, rejected_logps: torch.Tensor, ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor, beta: float = 0.1,
) -> torch.Tensor:
    """``[B]`` DPO losses: the Bradley-Terry loss of the implicit rewards
    (:func:`utils.reward_models.model.implicit_reward`)."""
    return -F.logsigmoid(implicit_reward(chosen_logps, ref_chosen_logps, beta) - implicit_reward(rejected_logps, ref_rejected_logps, beta))


def ipo_loss(
    chosen_logps: torch.Tensor, rejected_logps: torch.Tensor, ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor, chosen_lengths: torch.Tensor, rejected_lengths: torch.Tensor, beta: float = 0.1,
) -> torch.Tensor:
    """``[B]`` IPO losses ``(Δ - 1/(2β))²``, ``Δ`` the difference of log-ratios divided by each completion's length."""
    d_w = (chosen_logps - ref_chosen_logps) / chosen_lengths.clamp(min=1)
    d_l = (rejected_logps - ref_rejected_logps) / rejected_lengths.clamp(min=1)
    return (d_w - d_l - 1 / (2 * beta)) ** 2


def simpo_loss(chosen_mean_logps: torch.Tensor, rejected_mean_logps: torch.Tensor, beta: float = 2.0, gamma: float = 1.0) -> torch.Tensor:
    """``[B]`` SimPO losses from per-token mean log-probs; ``gamma`` is the target reward margin."""
    return -F.logsigmoid(beta * (chosen_mean_logps - rejected_mean_logps) - gamma)


def log_odds(mean_logps: torch.Tensor) -> torch.Tensor:
    """``log(p / (1 - p))`` for ``p = exp(mean_logps)`` (``mean_logps < 0``), computed stably."""
    return mean_logps - torch.log(-torch.expm1(mean_logps.clamp(max=-1e-6)))


def orpo_loss(
    chosen_nll: torch.Tensor, chosen_mean_logps: torch.Tensor, rejected_mean_logps: torch.Tensor, lam: float = 0.1
) -> torch.Tensor:
    """``[B]`` ORPO losses (Hong et al. 2024): the chosen response's NLL minus ``λ log σ`` of the log odds ratio."""
    return chosen_nll - lam * F.logsigmoid(log_odds(chosen_mean_logps) - log_odds(rejected_mean_logps))


def listwise_dpo_loss(logps: torch.Tensor, ref_logps: torch.Tensor, beta: float = 0.1, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Plackett-Luce over implicit rewards of ``K`` ranked responses (``[B, K]``, best first); a scalar.

    For ``K = 2`` it is the DPO loss (averaged). ``lengths``: ranked items per row, the rest padding.
    """
    return plackett_luce_loss(implicit_reward(logps, ref_logps, beta), lengths)


def kto_loss(
    logratios: torch.Tensor, desirable: torch.Tensor, kl: torch.Tensor | float, beta: float = 0.1,
    desirable_weight: float = 1.0, undesirable_weight: float = 1.0,
) -> torch.Tensor:
    """``[B]`` KTO losses (Ethayarajh et al. 2024, TRL's ``loss_type="kto"``) of unpaired responses.

    ``logratios``: ``[B]`` ``log π(y|x) - log π_ref(y|x)``; ``desirable``: ``[B]`` bool labels; ``kl``: the reference
    point ``z`` (a detached, non-negative estimate of ``KL(π || π_ref)``, e.g. :func:`kto_reference_point`).
    Desirable: ``w_d (1 - σ(β(r - z)))``; undesirable: ``w_u (1 - σ(β(z - r)))``. The batch loss is the mean.
    """
    desirable = desirable.bool()
    z = torch.as_tensor(kl, dtype=logratios.dtype, device=logratios.device)
    good = desirable_weight * (1 - torch.sigmoid(beta * (logratios - z)))
    bad = undesirable_weight * (1 - torch.sigmoid(beta * (z - logratios)))
    return torch.where(desirable, good, bad)


def kto_reference_point(mismatched_logps: torch.Tensor, ref_mismatched_logps: torch.Tensor) -> torch.Tensor:
    """KTO's ``z``: ``mean(log π(y'|x) - log π_ref(y'|x))`` over *mismatched* pairs (each prompt with another
    prompt's completion, TRL's estimate), clamped at 0 and detached (a scalar)."""
    return (mismatched_logps - ref_mismatched_logps).mean().detach().clamp(min=0)
