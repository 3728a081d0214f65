"""Graders of chapter 10's exercises: each test takes the student's function and raises ``AssertionError``
with a helpful message on failure (see :func:`utils.exercises.grade`)."""
from __future__ import annotations

from typing import Any, Callable

import torch

from .grader import Exercise

Test = Callable[[Callable[..., Any]], None]


def _vec(x: Any, n: int, what: str) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=torch.float64).reshape(-1)
    assert t.numel() == n, f"return {n} {what}, got {t.numel()}"
    return t


# ---------------------------------------------------------------- 10.1: GRPO's group advantages
def _ref_adv(r: torch.Tensor, G: int) -> torch.Tensor:
    g = r.double().view(-1, G)
    return ((g - g.mean(1, keepdim=True)) / (g.std(1, keepdim=True) + 1e-4)).reshape(-1)


def _t_adv_values(fn: Callable) -> None:
    """(r - group mean) / (group sample std + 1e-4), for 0/1 and real-valued rewards, G = 2, 4, 8"""
    g = torch.Generator().manual_seed(0)
    cases = [(torch.tensor([1.0, 0, 0, 0, 1, 1, 0, 1]), 4), (torch.rand(16, generator=g), 8),
             (torch.tensor([0.0, 1, 1, 1]), 2), ((torch.rand(24, generator=g) > 0.5).float(), 8)]
    for r, G in cases:
        got, want = _vec(fn(r.clone(), G), r.numel(), "advantages"), _ref_adv(r, G)
        hint = ""
        gg = r.double().view(-1, G)
        pop = ((gg - gg.mean(1, keepdim=True)) / (gg.std(1, unbiased=False, keepdim=True) + 1e-4)).reshape(-1)
        if torch.allclose(got, pop, atol=1e-4) and not torch.allclose(pop, want, atol=1e-4):
            hint = " - that divides by the population std; GRPO (and TRL) use the sample std (Bessel's correction)"
        flat = (r.double() - r.double().mean()) / (r.double().std() + 1e-4)
        if torch.allclose(got, flat, atol=1e-4) and not torch.allclose(flat, want, atol=1e-4):
            hint = " - that normalises over the whole batch; the baseline is each prompt's own group"
        assert torch.allclose(got, want, atol=1e-4), f"G={G}, rewards {r.tolist()}: expected {want.tolist()}, got {got.tolist()}{hint}"


def _t_adv_equal_groups(fn: Callable) -> None:
    """a group whose rewards are all equal gets advantage 0 (finite, no NaN): no learning signal"""
    r = torch.tensor([1.0, 1, 1, 1, 0, 0, 0, 0, 1, 0, 1, 0])
    got = _vec(fn(r.clone(), 4), 12, "advantages")
    assert torch.isfinite(got).all(), "all-equal groups must not give NaN or inf (add 1e-4 to the std)"
    assert torch.allclose(got[:8], torch.zeros(8, dtype=torch.float64), atol=1e-6), f"all-equal groups must give 0, got {got[:8].tolist()}"


def _t_adv_invariance(fn: Callable) -> None:
    """invariant to r -> a r + c per batch (a > 0): the scale of the reward does not matter"""
    g = torch.Generator().manual_seed(1)
    r = torch.rand(16, generator=g)
    a, b = _vec(fn(r.clone(), 4), 16, "advantages"), _vec(fn(3 * r + 5, 4), 16, "advantages")
    assert torch.allclose(a, b, atol=1e-3), "scaling and shifting the rewards changed the advantages"


# ---------------------------------------------------------------- 10.2: GSPO's sequence ratio
def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mask = (torch.arange(7)[None] < torch.tensor([7, 3, 1, 5])[:, None]).float()
    lp = -torch.rand(4, 7, generator=g) * 2 * mask
    old = (lp + 0.3 * torch.randn(4, 7, generator=g)) * mask
    return lp, old, mask


def _t_gspo_values(fn: Callable) -> None:
    """exp of the mean per-token log-ratio over each row's real tokens (rows of 7, 3, 1 and 5 tokens)"""
    lp, old, m = _batch()
    want = torch.exp(((lp - old) * m).sum(-1) / m.sum(-1)).double()
    # pad positions hold garbage: only the mask may decide what counts
    got = _vec(fn(lp + 5 * (1 - m), old - 3 * (1 - m), m), 4, "ratios (one per sequence)")
    hint = ""
    if torch.allclose(got, torch.exp(((lp - old) * m).sum(-1)).double(), atol=1e-5):
        hint = " - that is the product of the token ratios (the sequence likelihood ratio); GSPO takes its length-normalised geometric mean"
    elif torch.allclose(got, (((lp - old).exp()) * m).sum(-1).double() / m.sum(-1).double(), atol=1e-5):
        hint = " - that is the arithmetic mean of the token ratios; GSPO averages the log-ratios (a geometric mean)"
    assert torch.allclose(got, want, atol=1e-5), f"expected {want.tolist()}, got {got.tolist()}{hint}"


def _t_gspo_on_policy(fn: Callable) -> None:
    """on-policy (old = current) every ratio is exactly 1, and a ratio is differentiable in logps"""
    lp, _, m = _batch(1)
    x = lp.clone().requires_grad_(True)
    got = fn(x, lp.clone(), m)
    assert torch.allclose(torch.as_tensor(got).double(), torch.ones(4, dtype=torch.float64), atol=1e-6), "on-policy ratios must be 1"
    assert isinstance(got, torch.Tensor) and got.requires_grad, "return a tensor that keeps the gradient with respect to logps"


# ---------------------------------------------------------------- 10.3: process supervision
def _ref_process(steps: list[list[float]]) -> list[list[float]]:
    flat = torch.tensor([r for rs in steps for r in rs], dtype=torch.float64)
    if flat.numel() == 0:
        return [[] for _ in steps]
    std = flat.std() if flat.numel() > 1 else torch.zeros((), dtype=torch.float64)
    return [((torch.tensor(rs, dtype=torch.float64) - flat.mean()) / (std + 1e-4)).flip(0).cumsum(0).flip(0).tolist() for rs in steps]


def _as_lists(got: Any, steps: list[list[float]]) -> list[list[float]]:
    got = [list(map(float, torch.as_tensor(g, dtype=torch.float64).reshape(-1).tolist())) for g in got]
    assert len(got) == len(steps), f"return one list per completion ({len(steps)}), got {len(got)}"
    for g, s in zip(got, steps):
        assert len(g) == len(s), f"return one advantage per step: {len(s)} steps, got {len(g)}"
    return got


def _t_process_values(fn: Callable) -> None:
    """normalise by all the group's step rewards, then sum the normalised rewards from each step to the end"""
    cases = [[[1.0, 1.0, 0.0], [1.0, 0.0], [0.0], [1.0, 1.0, 1.0]],
             [[0.5, 1.0], [0.0, 0.0, 1.0], [1.0]],
             [[1.0, 0.0], [], [0.0, 1.0, 1.0]]]
    for steps in cases:
        got, want = _as_lists(fn([list(s) for s in steps]), steps), _ref_process(steps)
        flat_got, flat_want = [x for g in got for x in g], [x for w in want for x in w]
        hint = ""
        per_out = []
        for rs in steps:
            if not rs:
                per_out.append([])
                continue
            t = torch.tensor(rs, dtype=torch.float64)
            per_out.append(((t - t.mean()) / ((t.std() if t.numel() > 1 else 0.0) + 1e-4)).flip(0).cumsum(0).flip(0).tolist())
        if all(abs(a - b) < 1e-4 for a, b in zip(flat_got, [x for p in per_out for x in p])):
            hint = " - that normalises within each completion; the mean and std are over the whole group's steps"
        flat_z = _ref_process([[r] for rs in steps for r in rs])
        if all(abs(a - b[0]) < 1e-4 for a, b in zip(flat_got, flat_z)):
            hint = " - each step needs the sum of its own and all LATER normalised rewards, not just its own"
        assert all(abs(a - b) < 1e-4 for a, b in zip(flat_got, flat_want)), f"step rewards {steps}: expected {want}, got {got}{hint}"


def _t_process_constant(fn: Callable) -> None:
    """all step rewards equal: every advantage 0 (no NaN)"""
    steps = [[1.0, 1.0], [1.0], [1.0, 1.0, 1.0]]
    got = _as_lists(fn([list(s) for s in steps]), steps)
    assert all(abs(x) < 1e-6 for g in got for x in g), f"equal step rewards must give zero advantages, got {got}"


EXERCISES: dict[str, Exercise] = {
    "10.1": Exercise("GRPO's group-normalised advantages", [_t_adv_values, _t_adv_equal_groups, _t_adv_invariance],
                     "group_advantages"),
    "10.2": Exercise("GSPO's sequence-level importance ratio", [_t_gspo_values, _t_gspo_on_policy], "gspo_ratio"),
    "10.3": Exercise("process-supervised GRPO advantages", [_t_process_values, _t_process_constant], "process_advantages"),
}
