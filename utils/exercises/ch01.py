"""Graders of chapter 01's exercises: each test takes the student's function and raises ``AssertionError``
with a helpful message on failure (see :func:`utils.exercises.grade`)."""
from __future__ import annotations

import random
from typing import Any, Callable

from .grader import Exercise

Test = Callable[[Callable[..., Any]], None]


def _tensor(x: Any, what: str, shape: tuple[int, ...]):
    import torch

    assert isinstance(x, torch.Tensor), f"return a tensor ({what}), got {type(x).__name__}"
    assert tuple(x.shape) == shape, f"{what}: expected shape {shape}, got {tuple(x.shape)}"
    return x.float()


# ---------------------------------------------------------------- 01.1: GRPO's std-normalised advantage
def _t_grpo_values(fn: Callable) -> None:
    """A_i = (r_i - mean of the group) / (sample std of the group), per prompt; rows prompt-major"""
    import torch

    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0])  # 2 prompts x 4 samples
    got = _tensor(fn(rewards, 4), "advantages", (8,))
    s = (1 / 3) ** 0.5 * 1.0  # sample std of [1, 1, 0, 0] is sqrt(1/3)
    want = torch.tensor([1.5, -0.5, -0.5, -0.5, 0.5 / s, 0.5 / s, -0.5 / s, -0.5 / s])
    hint = ""
    if torch.allclose(got, torch.tensor([3 ** 0.5, -(3 ** -0.5), -(3 ** -0.5), -(3 ** -0.5), 1, 1, -1, -1.0]), rtol=1e-3):
        hint = " - that is the population std (divide by G); use the sample std (G - 1), as torch.std and TRL do"
    assert torch.allclose(got, want, rtol=1e-3, atol=1e-4), f"expected {[round(x, 4) for x in want.tolist()]}, got {got.tolist()}{hint}"


def _t_grpo_zero_variance(fn: Callable) -> None:
    """a group whose rewards are all equal gets advantage 0 (finite, no NaN), the other groups are unaffected"""
    import torch

    rewards = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0])  # all right, all wrong, one right (G=3)
    got = _tensor(fn(rewards, 3), "advantages", (9,))
    assert torch.isfinite(got).all(), f"got {got.tolist()}: guard the division for zero-variance groups (std = 0)"
    assert torch.allclose(got[:6], torch.zeros(6), atol=1e-6), f"all-equal groups must get 0, got {got[:6].tolist()}"
    s = (1 / 3) ** 0.5                                    # sample std of [1, 0, 0]
    want = torch.tensor([2 / 3, -1 / 3, -1 / 3]) / s
    assert torch.allclose(got[6:], want, rtol=1e-3), f"the mixed group: expected {want.tolist()}, got {got[6:].tolist()}"


def _t_grpo_per_group(fn: Callable) -> None:
    """each group is standardised with its own mean and std (not the batch's): invariant to r -> a*r + c per group"""
    import torch

    g = torch.Generator().manual_seed(4)
    base = torch.rand(5, generator=g)
    rewards = torch.cat([base, 10 * base + 3, 0.1 * base - 2])       # 3 prompts x 5: one pattern, three scales
    got = _tensor(fn(rewards, 5), "advantages", (15,))
    assert torch.allclose(got[:5], got[5:10], rtol=1e-3, atol=1e-3) and torch.allclose(got[:5], got[10:], rtol=1e-2, atol=1e-2), (
        "the three groups hold the same rewards up to a scale and a shift, so their advantages must agree; "
        f"got {[round(x, 3) for x in got.tolist()]} (normalise each group by its own std, not the batch's)")
    assert abs(float(got[:5].mean())) < 1e-4, "advantages of a group sum to zero (subtract the group mean)"
    assert abs(float(got[:5].std()) - 1.0) < 1e-2, "a standardised group has sample std 1"


# ---------------------------------------------------------------- 01.2: the optimal constant baseline from samples
def _second_moment(rewards, scores, b) -> float:
    return float((((rewards - b)[:, None] * scores) ** 2).sum())


def _t_bstar_values(fn: Callable) -> None:
    """b* = sum_i r_i ||g_i||^2 / sum_i ||g_i||^2 on a hand-computable batch"""
    import torch

    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0])
    scores = torch.tensor([[1.0, 0.0], [0.0, 3.0], [2.0, 2.0], [0.0, 1.0]])  # squared norms 1, 9, 8, 1
    got = float(fn(rewards, scores))
    want = 2 / 19
    hint = " (that is the mean reward: weight each reward by its squared score norm)" if abs(got - 0.5) < 1e-6 else ""
    assert abs(got - want) < 1e-6, f"expected {want:.6f}, got {got:.6f}{hint}"


def _t_bstar_minimises(fn: Callable) -> None:
    """b* minimises the sum of ||(r_i - b) g_i||^2 over b (check against nearby values)"""
    import torch

    g = torch.Generator().manual_seed(2)
    rewards = (torch.rand(32, generator=g) < 0.4).float()
    scores = torch.randn(32, 50, generator=g) * (1 + 3 * (1 - rewards))[:, None]  # wrong answers: larger scores
    b = float(fn(rewards, scores))
    f = _second_moment(rewards, scores, b)
    for d in (1e-2, -1e-2, 1e-1, -1e-1):
        assert f <= _second_moment(rewards, scores, b + d) + 1e-9, (
            f"b = {b:.4f} is not the minimiser: b {'+' if d > 0 else '-'} {abs(d)} gives a smaller second moment")
    assert b < float(rewards.mean()) - 0.05, (
        f"wrong completions have the larger scores here, so b* ({b:.3f}) should lie well below the mean reward "
        f"{float(rewards.mean()):.3f}")


def _t_bstar_equal_norms(fn: Callable) -> None:
    """with equal score norms b* is the mean reward; works for non-binary rewards and many dimensions"""
    import torch

    g = torch.Generator().manual_seed(5)
    rewards = torch.rand(10, generator=g) * 4 - 1
    scores = torch.nn.functional.normalize(torch.randn(10, 200, generator=g), dim=-1) * 2.5
    got = float(fn(rewards, scores))
    assert abs(got - float(rewards.mean())) < 1e-5, f"expected the mean reward {float(rewards.mean()):.5f}, got {got:.5f}"


# ---------------------------------------------------------------- 01.3: DAPO's token-level loss aggregation
def _t_token_grad(fn: Callable) -> None:
    """its gradient is -A_b / (number of real tokens in the batch) on every real token, 0 on padding"""
    import torch

    g = torch.Generator().manual_seed(0)
    logp = torch.randn(3, 6, generator=g).requires_grad_(True)
    mask = torch.tensor([[1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]])
    adv = torch.tensor([1.0, -1.0, 0.5])
    loss = fn(logp, mask, adv)
    assert isinstance(loss, torch.Tensor) and loss.ndim == 0, "return a scalar tensor"
    (grad,) = torch.autograd.grad(loss, logp)
    want = -(adv[:, None] * mask) / 11
    hints = {"a mean per sequence, then over sequences (GRPO's 1/|o|)": -(adv[:, None] * mask) / mask.sum(1, keepdim=True) / 3,
             "a sum per sequence, mean over sequences (plain REINFORCE)": -(adv[:, None] * mask) / 3,
             "a division by all B*T positions, padding included": -(adv[:, None] * mask) / 18}
    hint = next((f" - that is {k}" for k, v in hints.items() if torch.allclose(grad, v, atol=1e-6)), "")
    assert torch.allclose(grad, want, atol=1e-6), (
        f"gradient wrong: for the 2-token sequence (A = 1) expected {want[0, :2].tolist()} per token, "
        f"got {grad[0, :2].tolist()}{hint}")


def _t_token_padding(fn: Callable) -> None:
    """extra padding columns change nothing, and the advantages are constants (no gradient flows into them)"""
    import torch

    g = torch.Generator().manual_seed(1)
    logp = torch.randn(2, 4, generator=g)
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]])
    adv = torch.tensor([0.3, -2.0], requires_grad=True)
    a = fn(logp, mask, adv)
    padded = fn(torch.cat([logp, torch.randn(2, 3, generator=g)], 1), torch.cat([mask, torch.zeros(2, 3, dtype=mask.dtype)], 1), adv)
    assert torch.allclose(a, padded, atol=1e-6), f"padding changed the loss: {float(a):.5f} vs {float(padded):.5f}"
    assert not a.requires_grad, "detach the advantages: they are numbers, not functions of the parameters"


def _t_token_lengths(fn: Callable) -> None:
    """a sequence's share of the gradient is proportional to its length (a 12-token answer weighs 4x a 3-token one)"""
    import torch

    logp = torch.zeros(2, 12, requires_grad=True)
    mask = torch.zeros(2, 12)
    mask[0, :3] = 1
    mask[1, :] = 1
    (grad,) = torch.autograd.grad(fn(logp, mask, torch.tensor([1.0, 1.0])), logp)
    share = grad.sum(1) / grad.sum()
    assert torch.allclose(share, torch.tensor([0.2, 0.8]), atol=1e-6), f"expected shares [0.2, 0.8], got {share.tolist()}"


# ---------------------------------------------------------------- 01.6: when does a group carry a learning signal?
def _t_signal_values(fn: Callable) -> None:
    """zero at p = 0 and p = 1, 1/2 for a fair coin and G = 2, and the exact value at other p and G"""
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


EXERCISES: dict[str, Exercise] = {
    "01.1": Exercise("GRPO's std-normalised group advantage", [_t_grpo_values, _t_grpo_zero_variance, _t_grpo_per_group],
                     "grpo_advantages"),
    "01.2": Exercise("the variance-optimal constant baseline, from samples", [_t_bstar_values, _t_bstar_minimises, _t_bstar_equal_norms],
                     "optimal_constant_baseline"),
    "01.3": Exercise("DAPO's token-level loss aggregation", [_t_token_grad, _t_token_padding, _t_token_lengths],
                     "token_level_loss"),
    "01.6": Exercise("the chance that a group carries a learning signal", [_t_signal_values, _t_signal_one_sample, _t_signal_simulated],
                     "signal_probability"),
}
