"""Graders of chapter 01's exercises: each test takes the student's function and raises ``AssertionError``
with a helpful message on failure (see :func:`utils.exercises.grade`)."""
from __future__ import annotations

import random
from typing import Any, Callable

Test = Callable[[Callable[..., Any]], None]


# ---------------------------------------------------------------- 01.1: the REINFORCE loss with a baseline
def _t_reinforce_grad(fn: Callable) -> None:
    """its gradient is -(1/B) * sum_b (r_b - baseline_b) * sum_t grad log pi(y_bt | s_bt), padding excluded"""
    import torch

    g = torch.Generator().manual_seed(0)
    logp = torch.randn(4, 6, generator=g).requires_grad_(True)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0]])
    rewards = torch.tensor([1.0, 0.0, 1.0, 0.0])
    baseline = torch.tensor([0.25, 0.5, 0.5, 0.75])
    loss = fn(logp, mask, rewards, baseline)
    assert isinstance(loss, torch.Tensor) and loss.ndim == 0, "return a scalar tensor"
    (grad,) = torch.autograd.grad(loss, logp)
    want = -((rewards - baseline)[:, None] * mask) / 4
    assert torch.allclose(grad, want, atol=1e-6), (
        f"gradient wrong; for sequence 0 (reward 1, baseline 0.25, 3 real tokens) expected "
        f"{want[0].tolist()}, got {grad[0].tolist()}")


def _t_reinforce_toy(fn: Callable) -> None:
    """on a one-token categorical policy it gives the score-function estimate (r - b)(onehot(a) - p)"""
    import torch

    theta = torch.tensor([0.3, -1.0, 2.0], requires_grad=True)
    actions = torch.tensor([2, 0, 2])
    logp = theta.log_softmax(-1)[actions][:, None]
    rewards = torch.tensor([1.0, 0.0, 0.0])
    baseline = torch.full((3,), 1 / 3)
    (grad,) = torch.autograd.grad(fn(logp, torch.ones(3, 1), rewards, baseline), theta)
    p = theta.detach().softmax(-1)
    onehot = torch.nn.functional.one_hot(actions, 3).float()
    want = -((rewards - baseline)[:, None] * (onehot - p)).mean(0)
    assert torch.allclose(grad, want, atol=1e-6), f"expected gradient {want.tolist()}, got {grad.tolist()}"


def _t_reinforce_detached(fn: Callable) -> None:
    """the baseline is a constant: no gradient flows through it, even when it was computed from the model"""
    import torch

    logp = torch.randn(3, 2).requires_grad_(True)
    mask = torch.ones(3, 2)
    rewards = torch.tensor([1.0, 0.0, 1.0])
    baseline = logp.sum(-1).exp()  # a (silly) baseline that depends on the parameters
    (grad,) = torch.autograd.grad(fn(logp, mask, rewards, baseline), logp)
    want = -((rewards - baseline.detach())[:, None] * mask) / 3
    assert torch.allclose(grad, want, atol=1e-6), "detach the advantage (reward - baseline) before multiplying"


# ---------------------------------------------------------------- 01.2: SCST advantages
def _t_scst_values(fn: Callable) -> None:
    """A = r(sample) - r(greedy answer of the same prompt), rows prompt-major"""
    import torch

    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0])  # 3 prompts x 3 samples
    greedy = torch.tensor([1.0, 0.0, 1.0])
    got = fn(rewards, greedy, 3)
    want = torch.tensor([0.0, -1.0, -1.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0])
    assert isinstance(got, torch.Tensor) and got.shape == (9,), f"expected a [9] tensor, got {getattr(got, 'shape', got)}"
    assert torch.allclose(got.float(), want), (
        f"expected {want.tolist()}, got {got.tolist()} (rows i*G..i*G+G-1 belong to prompt i: "
        "repeat each greedy reward G times in a row, not the whole vector G times)")


def _t_scst_group_one(fn: Callable) -> None:
    """works with one sample per prompt and with non-binary rewards"""
    import torch

    rewards = torch.tensor([0.2, 0.9, 0.5])
    greedy = torch.tensor([0.5, 0.5, 0.5])
    got = fn(rewards, greedy, 1)
    assert torch.allclose(got.float(), rewards - greedy), f"expected {(rewards - greedy).tolist()}, got {got.tolist()}"


# ---------------------------------------------------------------- 01.3: the leave-one-out baseline
def _t_loo_values(fn: Callable) -> None:
    """b_i = mean reward of the other G-1 samples of the same prompt"""
    import torch

    rewards = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0])  # 2 prompts x 4
    got = fn(rewards, 4)
    want = torch.tensor([2 / 3, 1.0, 2 / 3, 2 / 3, 1 / 3, 1 / 3, 1 / 3, 0.0])
    assert isinstance(got, torch.Tensor) and got.shape == (8,), f"expected a [8] tensor, got {getattr(got, 'shape', got)}"
    assert torch.allclose(got.float(), want, atol=1e-6), f"expected {want.tolist()}, got {got.tolist()}"


def _t_loo_independent(fn: Callable) -> None:
    """b_i does not change when r_i changes (that is what makes it unbiased)"""
    import torch

    g = torch.Generator().manual_seed(1)
    rewards = torch.rand(12, generator=g)
    for i in (0, 5, 11):
        bumped = rewards.clone()
        bumped[i] += 3.0
        a, b = fn(rewards, 3), fn(bumped, 3)
        assert torch.allclose(a[i], b[i]), f"baseline of sample {i} changed when its own reward changed"
        assert not torch.allclose(a, b), "the baselines of the other samples of that prompt should change"


# ---------------------------------------------------------------- 01.6: when does a group carry a learning signal?
def _t_signal_values(fn: Callable) -> None:
    """P[signal] = 1 - (1-p)^G - p^G: zero at p = 0 and p = 1, 1/2 for a fair coin and G = 2"""
    cases = [(0.0, 8, 0.0), (1.0, 8, 0.0), (0.5, 2, 0.5), (0.2, 8, 1 - 0.8**8 - 0.2**8), (0.05, 16, 1 - 0.95**16 - 0.05**16)]
    for p, G, want in cases:
        got = float(fn(p, G))
        assert abs(got - want) < 1e-9, f"p={p}, G={G}: expected {want:.6f}, got {got:.6f}"


def _t_signal_one_sample(fn: Callable) -> None:
    """a group of one sample never disagrees with itself, and more samples never hurt"""
    for p in (0.0, 0.1, 0.5, 0.9):
        assert abs(float(fn(p, 1))) < 1e-12, f"G=1, p={p}: a single sample always 'agrees' with its group, expected 0"
    for p in (0.01, 0.3, 0.7):
        vals = [float(fn(p, G)) for G in (2, 4, 8, 16, 64)]
        assert all(b >= a - 1e-12 for a, b in zip(vals, vals[1:])), f"p={p}: P[signal] should grow with G, got {vals}"


def _t_signal_simulated(fn: Callable) -> None:
    """agrees with a simulation of 0/1 rewards (within Monte-Carlo error)"""
    rng = random.Random(0)
    for p, G in ((0.1, 4), (0.6, 8)):
        trials = 20000
        mixed = sum(len({rng.random() < p for _ in range(G)}) == 2 for _ in range(trials)) / trials
        got = float(fn(p, G))
        assert abs(got - mixed) < 0.02, f"p={p}, G={G}: simulated {mixed:.3f}, yours {got:.3f}"


EXERCISES: dict[str, tuple[str, list[Test]]] = {
    "01.1": ("the REINFORCE loss with a baseline", [_t_reinforce_grad, _t_reinforce_toy, _t_reinforce_detached]),
    "01.2": ("self-critical (SCST) advantages", [_t_scst_values, _t_scst_group_one]),
    "01.3": ("the leave-one-out baseline", [_t_loo_values, _t_loo_independent]),
    "01.6": ("the chance that a group carries a learning signal", [_t_signal_values, _t_signal_one_sample, _t_signal_simulated]),
}
