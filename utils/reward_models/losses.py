"""Losses for learning a reward from comparisons (survey §3.1.1-3.1.2).

Bradley-Terry: ``P(y_w > y_l | x) = sigmoid(r(x, y_w) - r(x, y_l))``; the loss is its negative log-likelihood.
Plackett-Luce: a ranking ``y_1 > y_2 > ... > y_K`` has probability ``prod_k exp(r_k) / sum_{j >= k} exp(r_j)``;
for ``K = 2`` it is Bradley-Terry.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def bradley_terry_loss(
    r_chosen: torch.Tensor, r_rejected: torch.Tensor, margin: torch.Tensor | float | None = None,
    center_coefficient: float | None = None,
) -> torch.Tensor:
    """``-mean log sigmoid(r_w - r_l - margin)`` over ``[B]`` rewards, plus ``center_coefficient *
    mean((r_w + r_l)^2)`` when given - TRL ``RewardTrainer.compute_loss`` term by term (its ``margin`` column and
    ``center_rewards_coefficient``).

    The Bradley-Terry likelihood sees only differences, so adding a constant to every reward of a prompt changes
    nothing; the centering term pins that free constant near zero.
    """
    if r_chosen.shape != r_rejected.shape:
        raise ValueError(f"chosen and rejected rewards differ in shape: {tuple(r_chosen.shape)} vs {tuple(r_rejected.shape)}")
    diff = r_chosen - r_rejected
    if margin is not None:
        diff = diff - margin
    loss = -F.logsigmoid(diff).mean()
    if center_coefficient is not None:
        loss = loss + center_coefficient * ((r_chosen + r_rejected) ** 2).mean()
    return loss


def plackett_luce_loss(scores: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Negative log-likelihood of rankings under Plackett-Luce, averaged over the batch.

    ``scores``: ``[B, K]`` rewards with each row **in ranked order, best first**. ``lengths``: optional ``[B]``
    number of ranked items per row (the rest is padding). Equals :func:`bradley_terry_loss` for ``K = 2``.
    """
    if scores.dim() != 2 or scores.shape[1] < 2:
        raise ValueError(f"scores must be [B, K] with K >= 2, got {tuple(scores.shape)}")
    B, K = scores.shape
    valid = torch.ones_like(scores, dtype=torch.bool) if lengths is None else (
        torch.arange(K, device=scores.device)[None] < lengths[:, None])
    masked = scores.masked_fill(~valid, float("-inf"))
    # log sum_{j >= k} exp(s_j): a reversed cumulative logsumexp
    tail = torch.logcumsumexp(masked.flip(-1), dim=-1).flip(-1)
    terms = (scores - tail).masked_fill(~valid, 0.0)
    # the last ranked item contributes log 1 = 0
    return -(terms.sum(-1)).mean()
