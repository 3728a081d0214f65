"""Reference solutions to chapter 10's exercises (spoilers!). The test-suite checks that each passes its grader."""
from __future__ import annotations

from typing import Sequence

import torch


def group_advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """10.1: ``[B]`` ``(r_i - mean_G r) / (std_G r + 1e-4)`` per group of ``group_size`` consecutive rows; the sample
    (Bessel-corrected) standard deviation; an all-equal group gives zeros."""
    g = torch.as_tensor(rewards, dtype=torch.float32).view(-1, group_size)
    return ((g - g.mean(1, keepdim=True)) / (g.std(1, keepdim=True) + 1e-4)).reshape(-1)


def gspo_ratio(logps: torch.Tensor, old_logps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """10.2: ``[B]`` GSPO's sequence ratio ``exp(mean_t (logp_t - old_logp_t))`` over each row's real tokens: the
    geometric mean of the token ratios (a length-normalised sequence likelihood ratio)."""
    m = mask.to(logps.dtype)
    return torch.exp(((logps - old_logps) * m).sum(-1) / m.sum(-1).clamp(min=1.0))


def process_advantages(step_rewards: Sequence[Sequence[float]], eps: float = 1e-4) -> list[list[float]]:
    """10.3: GRPO with process supervision (Shao et al. 2024, §4.1.3) for one group of ``G`` completions:
    normalise every step reward by the mean and sample std of *all* the group's step rewards, then give each step
    the sum of the normalised rewards of itself and every later step of its completion."""
    flat = torch.tensor([r for rs in step_rewards for r in rs], dtype=torch.float64)
    if flat.numel() == 0:
        return [[] for _ in step_rewards]
    std = flat.std() if flat.numel() > 1 else torch.zeros((), dtype=torch.float64)
    mean = flat.mean()
    out = []
    for rs in step_rewards:
        z = (torch.tensor(list(rs), dtype=torch.float64) - mean) / (std + eps)
        out.append(z.flip(0).cumsum(0).flip(0).tolist())
    return out
