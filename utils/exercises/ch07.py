"""Graders of chapter 07's exercises: each test takes the student's function and raises ``AssertionError``
with a helpful message on failure (see :func:`utils.exercises.grade`)."""
from __future__ import annotations

from typing import Any, Callable

from .grader import Exercise

Test = Callable[[Callable[..., Any]], None]


def _tensor(x: Any, what: str, shape: tuple[int, ...]):
    import torch

    assert isinstance(x, torch.Tensor), f"return a tensor ({what}), got {type(x).__name__}"
    assert tuple(x.shape) == shape, f"{what}: expected shape {shape}, got {tuple(x.shape)}"
    return x.detach().float()


def _rows(seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([5, 2, 4])
    mask = (torch.arange(5)[None] < lengths[:, None]).float()
    rewards = torch.randn(3, 5, generator=g) * mask
    values = torch.randn(3, 5, generator=g)              # deliberately non-zero on padding: it must be ignored
    return rewards, values, mask


def _gae_ref(rewards, values, mask, gamma, lam):
    from ..rl.ppo import gae

    return gae(rewards, values * mask, mask, gamma, lam)[0]


# ---------------------------------------------------------------- 07.1: GAE
def _t_gae_values(fn: Callable) -> None:
    """A_t = delta_t + gamma*lam*A_{t+1}, delta_t = r_t + gamma*V(s_{t+1}) - V(s_t), for several (gamma, lam)"""
    import torch

    r, v, m = _rows()
    for gamma, lam in [(1.0, 0.95), (0.9, 0.7)]:
        got = _tensor(fn(r, v, m, gamma, lam), "advantages", (3, 5))
        want = _gae_ref(r, v, m, gamma, lam)
        hint = ""
        if torch.allclose(got * m, _gae_ref(r, v, m, gamma, 1.0) * m, atol=1e-4):
            hint = " - that is lam = 1 (the Monte-Carlo advantage): multiply the next advantage by gamma * lam"
        assert torch.allclose(got * m, want, atol=1e-4), (
            f"gamma={gamma}, lam={lam}: expected row 0 {[round(x, 4) for x in want[0].tolist()]}, "
            f"got {[round(x, 4) for x in (got * m)[0].tolist()]}{hint}")


def _t_gae_end(fn: Callable) -> None:
    """the episode ends at the last real token: V = 0 after it (no bootstrapping from padding), 0 off-mask"""
    import torch

    r, v, m = _rows(1)
    got = _tensor(fn(r, v, m, 1.0, 0.95), "advantages", (3, 5))
    assert torch.allclose(got * (1 - m), torch.zeros_like(got), atol=1e-6), "advantages must be 0 on padding"
    last = m.sum(-1).long() - 1
    want_last = r[torch.arange(3), last] - v[torch.arange(3), last]
    assert torch.allclose(got[torch.arange(3), last], want_last, atol=1e-5), (
        "at each row's last real token A = r - V(s_t): the next state is terminal (V = 0), whatever the value "
        f"tensor holds at the padding; expected {want_last.tolist()}, got {got[torch.arange(3), last].tolist()}")


def _t_gae_td(fn: Callable) -> None:
    """lam = 0 gives the one-step TD error, and the result is the advantage, not the return A + V"""
    import torch

    r, v, m = _rows(2)
    got = _tensor(fn(r, v, m, 1.0, 0.0), "advantages", (3, 5))
    want = _gae_ref(r, v, m, 1.0, 0.0)
    hint = " - return A_t, not the value target A_t + V(s_t)" if torch.allclose(got * m, (want + v) * m, atol=1e-4) else ""
    assert torch.allclose(got * m, want, atol=1e-5), f"lam = 0: expected the TD errors {want[0].tolist()}{hint}"


# ---------------------------------------------------------------- 07.2: the clipped surrogate
def _loss_inputs(seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    mask = torch.tensor([[1.0, 1, 1, 1], [1, 1, 0, 0]])
    old = -torch.rand(2, 4, generator=g) * 2 * mask
    logp = old + torch.tensor([[0.5, -0.5, 0.05, -0.3], [0.3, -0.02, 0.9, 0.9]])   # ratios in and out of [0.8, 1.2]
    adv = torch.tensor([[1.0, 1.0, -1.0, -2.0], [-1.0, 0.5, 3.0, 3.0]])
    return logp * mask, old, adv, mask


def _clip_ref(logp, old, adv, mask, eps):
    from ..rl.ppo import clipped_policy_loss

    return clipped_policy_loss(logp, old, adv, mask, eps)[0]


def _t_clip_value(fn: Callable) -> None:
    """the loss is -mean over real tokens of min(rho A, clip(rho, 1-eps, 1+eps) A), rho = pi/pi_old"""
    import torch

    logp, old, adv, mask = _loss_inputs()
    got = fn(logp, old, adv, mask, 0.2)
    assert isinstance(got, torch.Tensor) and got.numel() == 1, "return a scalar tensor"
    want = _clip_ref(logp, old, adv, mask, 0.2)
    hint = ""
    ratio = (logp - old).exp()
    alt = {"max instead of min (the optimistic bound)": -(torch.maximum(ratio * adv, ratio.clamp(0.8, 1.2) * adv) * mask).sum() / mask.sum(),
           "only the clipped term (no min)": -(ratio.clamp(0.8, 1.2) * adv * mask).sum() / mask.sum(),
           "a per-sequence mean (pad tokens change the weights)": -((torch.minimum(ratio * adv, ratio.clamp(0.8, 1.2) * adv) * mask).sum(-1) / mask.sum(-1)).mean()}
    for why, val in alt.items():
        if abs(float(got) - float(val)) < 1e-5:
            hint = f" - that is {why}"
    assert abs(float(got) - float(want)) < 1e-5, f"expected {float(want):.5f}, got {float(got):.5f}{hint}"


def _t_clip_grad(fn: Callable) -> None:
    """gradient 0 where the ratio left the clip range in the advantage's direction, -A rho / N elsewhere"""
    import torch

    logp, old, adv, mask = _loss_inputs(1)
    x = logp.clone().requires_grad_(True)
    loss = fn(x, old, adv, mask, 0.2)
    (g,) = torch.autograd.grad(loss, x)
    ratio = (logp - old).exp()
    clipped = ((ratio > 1.2) & (adv > 0)) | ((ratio < 0.8) & (adv < 0))
    want = torch.where(clipped, torch.zeros_like(g), -adv * ratio / mask.sum()) * mask
    assert torch.allclose(g, want, atol=1e-6), (f"expected gradient {[[round(v, 4) for v in r] for r in want.tolist()]}, "
                                               f"got {[[round(v, 4) for v in r] for r in g.tolist()]}")


def _t_clip_eps(fn: Callable) -> None:
    """eps is respected, and old log-probs are constants (no gradient flows into them)"""
    import torch

    logp, old, adv, mask = _loss_inputs(2)
    for eps in (0.1, 0.5):
        assert abs(float(fn(logp, old, adv, mask, eps)) - float(_clip_ref(logp, old, adv, mask, eps))) < 1e-5, f"eps={eps}"
    o = old.clone().requires_grad_(True)
    loss = fn(logp.clone().requires_grad_(True), o, adv, mask, 0.2)
    grads = torch.autograd.grad(loss, o, allow_unused=True)[0] if loss.requires_grad else None
    assert grads is None or torch.allclose(grads, torch.zeros_like(grads)), "detach old_logp: pi_old is a constant of the update"


# ---------------------------------------------------------------- 07.3: explained variance
def _t_ev_values(fn: Callable) -> None:
    """1 - Var(R - V) / Var(R) over real tokens: 1 for a perfect critic, 0 for the mean, < 0 for a bad one"""
    import torch

    r, v, m = _rows(3)
    ev = float(fn(r, r, m))
    assert abs(ev - 1) < 1e-5, f"a critic that predicts the returns exactly has explained variance 1, got {ev}"
    mean = float(r[m.bool()].mean())
    ev0 = float(fn(torch.full_like(r, mean), r, m))
    assert abs(ev0) < 1e-5, f"a constant critic equal to the mean return explains nothing (0), got {ev0}"
    bad = float(fn(-r, r, m))
    assert bad < -1, f"a critic with the wrong sign is worse than a constant (explained variance < 0), got {bad}"


def _t_ev_mask(fn: Callable) -> None:
    """padding is ignored (values and returns there may be anything)"""
    import torch

    from ..rl.ppo import explained_variance

    r, v, m = _rows(4)
    noisy_r, noisy_v = r + 50 * (1 - m), v - 30 * (1 - m)
    got = float(fn(noisy_v, noisy_r, m))
    want = explained_variance(v, r, m)
    assert abs(got - want) < 1e-4, f"expected {want:.4f} (masked tokens only), got {got:.4f}"
    assert isinstance(fn(v, r, m), (float, torch.Tensor)), "return a float (or a 0-d tensor)"


def _t_ev_ratio(fn: Callable) -> None:
    """it is not Var(V) / Var(R): a critic off by a constant has the same explained variance"""
    r, v, m = _rows(5)
    from ..rl.ppo import explained_variance

    v2 = 0.5 * r + 0.3 * v
    for shift in (0.0, 2.0):
        got, want = float(fn(v2 + shift, r, m)), explained_variance(v2 + shift, r, m)
        assert abs(got - want) < 1e-4, f"shift {shift}: expected {want:.4f}, got {got:.4f}"


EXERCISES: dict[str, Exercise] = {
    "07.1": Exercise("generalised advantage estimation (GAE)", [_t_gae_values, _t_gae_end, _t_gae_td], "gae"),
    "07.2": Exercise("PPO's clipped surrogate loss", [_t_clip_value, _t_clip_grad, _t_clip_eps], "ppo_clipped_loss"),
    "07.3": Exercise("the critic's explained variance", [_t_ev_values, _t_ev_mask, _t_ev_ratio], "explained_variance"),
}
