"""Graders of chapter 11's exercises: each test takes the student's function and raises ``AssertionError``
with a helpful message on failure (see :func:`utils.exercises.grade`)."""
from __future__ import annotations

import math
from typing import Any, Callable

from .grader import Exercise

Test = Callable[[Callable[..., Any]], None]


def _batch(seed: int = 0):
    """A right-padded ``[B=4, T=6]`` batch in float64: rewards, log-probs, reference log-probs, mask."""
    import torch

    g = torch.Generator().manual_seed(seed)
    lens = torch.tensor([6, 2, 4, 1])
    mask = (torch.arange(6)[None] < lens[:, None]).double()
    logp = -torch.rand(4, 6, generator=g, dtype=torch.float64)
    ref = -torch.rand(4, 6, generator=g, dtype=torch.float64)
    values = torch.rand(4, 6, generator=g, dtype=torch.float64)
    # junk on the padding: a correct answer must not read it
    logp, ref, values = logp + 5 * (1 - mask), ref - 3 * (1 - mask), values + 7 * (1 - mask)
    return torch.tensor([1.0, 0.0, 1.0, 1.0], dtype=torch.float64), logp, ref, values, mask


# ---------------------------------------------------------------- 11.1: soft value targets
def _want_targets(rewards, lr, mask, beta):
    B, T = lr.shape
    out = [[0.0] * T for _ in range(B)]
    for b in range(B):
        n = int(mask[b].sum())
        for t in range(n):
            out[b][t] = float(rewards[b]) - beta * sum(float(lr[b, i]) for i in range(t, n))
    return out


def _t_targets_values(fn: Callable) -> None:
    """R - beta * sum_{i >= t} log-ratio_i on real tokens, 0 on padding (B=4, T=6, three betas)"""
    import torch

    rewards, logp, ref, _, mask = _batch(0)
    lr = logp - ref
    for beta in [0.1, 0.5, 2.0]:
        got = torch.as_tensor(fn(rewards, lr, mask, beta), dtype=torch.float64)
        assert got.shape == lr.shape, f"return a [B, T] = {tuple(lr.shape)} tensor, got {tuple(got.shape)}"
        want = torch.tensor(_want_targets(rewards, lr, mask, beta), dtype=torch.float64)
        hint = ""
        if torch.allclose(got * mask, (want + beta * lr) * mask, atol=1e-9):
            hint = " - the sum starts at t itself (i >= t), not at t + 1"
        elif not torch.allclose(got * (1 - mask), torch.zeros_like(got), atol=1e-9) and torch.allclose(got * mask, want, atol=1e-9):
            hint = " - set the targets to 0 on the padding"
        elif (got * mask - want).abs().max() > 1e-6 and torch.allclose(got[0], want[0], atol=1e-9):
            hint = " - the padded rows are wrong: do not sum the padding's log-ratios"
        assert torch.allclose(got, want, atol=1e-9), f"beta={beta}: wrong targets{hint}"


def _t_targets_sign(fn: Callable) -> None:
    """a trajectory that spent no KL (log-ratios 0) has target R at every token; positive log-ratios lower it"""
    import torch

    mask = torch.ones(2, 3, dtype=torch.float64)
    r = torch.tensor([1.0, 0.0], dtype=torch.float64)
    got = torch.as_tensor(fn(r, torch.zeros(2, 3, dtype=torch.float64), mask, 0.3), dtype=torch.float64)
    assert torch.allclose(got, r[:, None].expand(2, 3)), f"with zero log-ratios the targets are R everywhere, got {got.tolist()}"
    got = torch.as_tensor(fn(r, torch.ones(2, 3, dtype=torch.float64), mask, 0.3), dtype=torch.float64)
    assert float(got[0, 0]) < float(got[0, 2]) < 1.0, "log-ratios > 0 (KL spent) must lower the target, more so early in the trajectory"


# ---------------------------------------------------------------- 11.2: step-level OREO's policy loss
def _step_batch(seed: int = 0):
    """``B=3`` trajectories of ``T=8`` tokens cut into steps (``step [B, T]``, -1 on padding) and ``S=4`` value slots,
    in float64; junk on the padding and on the value slots of steps a trajectory does not have."""
    import torch

    g = torch.Generator().manual_seed(seed)
    step = torch.tensor([[0, 0, 0, 1, 1, 2, 2, 2],      # 3 steps of 3, 2, 3 tokens
                         [0, 0, 1, 1, 1, 1, -1, -1],    # 2 steps, 2 tokens of padding
                         [0, 1, 2, 2, 3, 3, 3, -1]])    # 4 steps
    mask = (step >= 0).double()
    logp = -torch.rand(3, 8, generator=g, dtype=torch.float64) + 4 * (1 - mask)
    ref = -torch.rand(3, 8, generator=g, dtype=torch.float64) - 2 * (1 - mask)
    values = torch.rand(3, 4, generator=g, dtype=torch.float64)
    values[0, 3], values[1, 2:] = 9.0, 9.0
    return torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64), logp, ref, values, step


def _ref_step_loss(values, rewards, logp, ref, step, beta):
    from .solutions.ch11 import step_policy_loss

    return step_policy_loss(values, rewards, logp, ref, step, beta)


def _step_loops(values, rewards, logp, ref, step, beta, detach_later=True, mean_ratio=False):
    """The loss as plain loops (for hints): residual per step, mean over a trajectory's steps, then the batch."""
    total = 0.0
    for b in range(step.shape[0]):
        ids = sorted({int(k) for k in step[b] if k >= 0})
        rho = []
        for k in ids:
            sel = step[b] == k
            r = (logp[b][sel] - ref[b][sel])
            rho.append(r.mean() if mean_ratio else r.sum())
        res = 0.0
        for j, k in enumerate(ids):
            later = sum(((x.detach() if detach_later else x) for x in rho[j + 1:]), torch_zero(values))
            res = res + (values[b, k].detach() - rewards[b] + beta * rho[j] + beta * later) ** 2
        total = total + res / len(ids)
    return total / step.shape[0]


def torch_zero(like):
    import torch

    return torch.zeros((), dtype=like.dtype)


def _t_step_value(fn: Callable) -> None:
    """the loss value: a step's log-ratio is the sum over its tokens; mean over each trajectory's steps, then the batch"""
    import torch

    rewards, logp, ref, values, step = _step_batch(1)
    n_steps = [len({int(k) for k in row if k >= 0}) for row in step]
    for beta in [0.1, 1.0]:
        got = float(torch.as_tensor(fn(values, rewards, logp, ref, step, beta)))
        want = float(_ref_step_loss(values, rewards, logp, ref, step, beta))
        per_traj = [float(_step_loops(values[b:b + 1], rewards[b:b + 1], logp[b:b + 1], ref[b:b + 1], step[b:b + 1], beta))
                    for b in range(len(n_steps))]
        pooled = sum(x * n for x, n in zip(per_traj, n_steps)) / sum(n_steps)
        hint = ""
        if abs(got - float(_step_loops(values, rewards, logp, ref, step, beta, mean_ratio=True))) < 1e-9:
            hint = " - a step's log-ratio is the *sum* of its tokens' log-ratios (log pi of the whole step), not their mean"
        elif abs(got - pooled) < 1e-9:
            hint = " - average over each trajectory's steps first, then over trajectories"
        assert abs(got - want) < 1e-9 * max(1.0, abs(want)), f"beta={beta}: expected {want:.6f}, got {got:.6f}{hint}"


def _t_step_gradient(fn: Callable) -> None:
    """the gradient: every token of step k moves with step k's residual; later steps and the value are detached"""
    import torch

    rewards, logp0, ref, values0, step = _step_batch(2)
    beta = 0.5
    logp, values = logp0.clone().requires_grad_(True), values0.clone().requires_grad_(True)
    loss = fn(values, rewards, logp, ref, step, beta)
    assert isinstance(loss, torch.Tensor) and loss.requires_grad, "return a differentiable torch scalar"
    g_logp, g_v = torch.autograd.grad(loss, [logp, values], allow_unused=True)
    assert g_v is None or float(g_v.abs().max()) == 0.0, "the value must be detached in the policy loss (sg[V])"
    assert g_logp is not None, "the loss does not depend on logp"
    lp2 = logp0.clone().requires_grad_(True)
    want = torch.autograd.grad(_ref_step_loss(values0, rewards, lp2, ref, step, beta), lp2)[0]
    lp3 = logp0.clone().requires_grad_(True)
    g_full = torch.autograd.grad(_step_loops(values0, rewards, lp3, ref, step, beta, detach_later=False), lp3)[0]
    hint = " - detach the later steps' log-ratios: only the current step carries a gradient" if torch.allclose(g_logp, g_full, atol=1e-9) else ""
    mask = (step >= 0).double()
    assert torch.allclose(g_logp * mask, want, atol=1e-9), f"wrong gradient with respect to logp{hint}"
    assert float((g_logp * (1 - mask)).abs().max()) == 0.0, "the padding must get no gradient"


# ---------------------------------------------------------------- 11.3: one soft step
def _t_soft_value(fn: Callable) -> None:
    """beta log sum_a p_a exp(r_a / beta) for a few (p, r, beta)"""
    import torch

    cases = [([0.5, 0.5], [1.0, 0.0], 1.0), ([0.2, 0.3, 0.5], [0.0, 1.0, 0.0], 0.5), ([1.0], [0.7], 0.1), ([0.9, 0.1], [0.0, 1.0], 10.0)]
    for p, r, beta in cases:
        want = beta * math.log(sum(pi * math.exp(ri / beta) for pi, ri in zip(p, r)))
        got = float(torch.as_tensor(fn(torch.tensor(p, dtype=torch.float64), torch.tensor(r, dtype=torch.float64), beta)))
        hint = ""
        if abs(got - sum(pi * ri for pi, ri in zip(p, r))) < 1e-9 and len(p) > 1:
            hint = " - that is the plain expectation (the beta -> infinity limit)"
        elif abs(got - max(r)) < 1e-9 and len(p) > 1:
            hint = " - that is the max (the beta -> 0 limit)"
        assert abs(got - want) < 1e-9, f"p={p}, r={r}, beta={beta}: expected {want:.6f}, got {got:.6f}{hint}"


def _t_soft_value_stable(fn: Callable) -> None:
    """stays finite and correct for beta = 1e-3 (exp(1000) overflows: use log-sum-exp)"""
    import torch

    p, r = torch.tensor([0.25, 0.75], dtype=torch.float64), torch.tensor([1.0, 0.0], dtype=torch.float64)
    got = float(torch.as_tensor(fn(p, r, 1e-3)))
    want = 1.0 + 1e-3 * math.log(0.25 + 0.75 * math.exp(-1000.0))
    assert math.isfinite(got), "non-finite value for beta = 1e-3: compute the log-sum-exp stably"
    assert abs(got - want) < 1e-9, f"beta = 1e-3: expected {want:.6f}, got {got:.6f}"


EXERCISES: dict[str, Exercise] = {
    "11.1": Exercise("OREO's soft value targets", [_t_targets_values, _t_targets_sign], "soft_targets"),
    "11.2": Exercise("step-level OREO's policy loss", [_t_step_value, _t_step_gradient], "step_policy_loss"),
    "11.3": Exercise("the soft value of one step", [_t_soft_value, _t_soft_value_stable], "soft_value"),
}
