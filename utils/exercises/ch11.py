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


# ---------------------------------------------------------------- 11.2: OREO's policy loss
def _ref_policy_loss(values, rewards, logp, ref, mask, beta):
    from .solutions.ch11 import policy_loss

    return policy_loss(values, rewards, logp, ref, mask, beta)


def _t_policy_value(fn: Callable) -> None:
    """the loss value: per-trajectory mean over real tokens, then the batch mean"""
    import torch

    rewards, logp, ref, values, mask = _batch(1)
    for beta in [0.1, 1.0]:
        got = float(torch.as_tensor(fn(values, rewards, logp, ref, mask, beta)))
        want = float(_ref_policy_loss(values, rewards, logp, ref, mask, beta))
        m = mask
        rho = (logp - ref) * m
        later = rho.flip(-1).cumsum(-1).flip(-1) - rho
        resid = (values - rewards[:, None] + beta * rho + beta * later) * m
        token_mean = float((resid**2).sum() / m.sum())
        hint = " - average over each trajectory's tokens first, then over trajectories (1/T per trajectory)" if abs(got - token_mean) < 1e-9 else ""
        survey = float((((values - rewards[:, None] + beta * rho) * m) ** 2).sum(-1).div(m.sum(-1)).mean())
        if abs(got - survey) < 1e-9:
            hint = " - the residual includes the later tokens' log-ratios (detached), as in the value loss"
        assert abs(got - want) < 1e-9 * max(1.0, abs(want)), f"beta={beta}: expected {want:.6f}, got {got:.6f}{hint}"


def _t_policy_gradient(fn: Callable) -> None:
    """the gradient: only the current token's log-ratio is differentiated; the value gets no gradient"""
    import torch

    rewards, logp0, ref, values0, mask = _batch(2)
    beta = 0.5
    logp, values = logp0.clone().requires_grad_(True), values0.clone().requires_grad_(True)
    loss = fn(values, rewards, logp, ref, mask, beta)
    assert isinstance(loss, torch.Tensor) and loss.requires_grad, "return a differentiable torch scalar"
    g_logp, g_v = torch.autograd.grad(loss, [logp, values], allow_unused=True)
    lp2 = logp0.clone().requires_grad_(True)
    want = torch.autograd.grad(_ref_policy_loss(values0, rewards, lp2, ref, mask, beta), lp2)[0]
    assert g_v is None or float(g_v.abs().max()) == 0.0, "the value must be detached in the policy loss (sg[V])"
    assert g_logp is not None, "the loss does not depend on logp"
    hint = ""
    full = logp0.clone().requires_grad_(True)
    m = mask
    rho = (full - ref) * m
    resid = (values0 - rewards[:, None] + beta * rho.flip(-1).cumsum(-1).flip(-1)) * m
    g_full = torch.autograd.grad(((resid**2).sum(-1) / m.sum(-1)).mean(), full)[0]
    if torch.allclose(g_logp, g_full, atol=1e-9):
        hint = " - detach the later tokens' log-ratios: only rho_t carries a gradient"
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
    "11.2": Exercise("OREO's policy loss", [_t_policy_value, _t_policy_gradient], "policy_loss"),
    "11.3": Exercise("the soft value of one step", [_t_soft_value, _t_soft_value_stable], "soft_value"),
}
