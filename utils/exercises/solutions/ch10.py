"""Reference solutions to chapter 10's exercises (spoilers!). The test-suite checks that each passes its grader."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from ...rl import policy_gradient


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


# ---------------------------------------------------------------- typical wrong answers (each must fail its grader)
def _process_per_completion(steps):  # normalised within each completion
    out = []
    for rs in steps:
        t = torch.tensor(rs, dtype=torch.float64)
        out.append([] if not rs else ((t - t.mean()) / ((t.std() if len(rs) > 1 else 0.0) + 1e-4)).flip(0).cumsum(0).flip(0).tolist())
    return out


def _process_no_sum(steps):  # no reward-to-go sum
    flat = torch.tensor([r for rs in steps for r in rs], dtype=torch.float64)
    return [((torch.tensor(rs, dtype=torch.float64) - flat.mean()) / (flat.std() + 1e-4)).tolist() for rs in steps]


WRONG: dict[str, list[Callable[..., Any]]] = {
    # population std; no eps (NaN on equal groups); batch normalisation; no std at all
    "10.1": [
        lambda r, G: ((g := r.view(-1, G)) - g.mean(1, keepdim=True)).div(g.std(1, unbiased=False, keepdim=True) + 1e-4).reshape(-1),
        lambda r, G: ((g := r.view(-1, G)) - g.mean(1, keepdim=True)).div(g.std(1, keepdim=True)).reshape(-1),
        lambda r, G: (r - r.mean()) / (r.std() + 1e-4),
        lambda r, G: ((g := r.view(-1, G)) - g.mean(1, keepdim=True)).reshape(-1),
    ],
    # product of ratios; arithmetic mean of ratios; mean over the padded length; mask ignored
    "10.2": [
        lambda lp, old, m: torch.exp(((lp - old) * m).sum(-1)),
        lambda lp, old, m: ((lp - old).exp() * m).sum(-1) / m.sum(-1),
        lambda lp, old, m: torch.exp(((lp - old) * m).sum(-1) / m.shape[1]),
        lambda lp, old, m: torch.exp((lp - old).mean(-1)),
    ],
    # normalised within each completion; no reward-to-go sum; the outcome (last step) only
    "10.3": [_process_per_completion, _process_no_sum, lambda steps: [[0.0] * len(rs) for rs in steps]],
}

#: the course library's own version, which passes the grader too
ALSO_RIGHT: dict[str, list[Callable[..., Any]]] = {
    "10.1": [lambda r, G: policy_gradient.group_advantages(r, G, "group")],
}
