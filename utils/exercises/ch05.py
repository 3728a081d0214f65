"""Graders of chapter 05's exercises (reward models): each test takes the student's function and raises
``AssertionError`` with a helpful message on failure (see :func:`utils.exercises.grade`)."""
from __future__ import annotations

import math
from typing import Any, Callable

from .grader import Exercise

Test = Callable[[Callable[..., Any]], None]


def _float(x: Any, what: str) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        raise AssertionError(f"return a number ({what}), got {type(x).__name__}") from None


def _tensor(x: Any, what: str, shape: tuple[int, ...]):
    import torch

    assert isinstance(x, torch.Tensor), f"return a tensor ({what}), got {type(x).__name__}"
    assert tuple(x.shape) == shape, f"{what}: expected shape {shape}, got {tuple(x.shape)}"
    return x.double()


# ---------------------------------------------------------------- 05.1: how often the annotator flips a pair: P(b > a)
def _t_flip_values(fn: Callable) -> None:
    """P(b > a) = sigmoid(-delta / tau) with delta = r*(a) - r*(b): for delta > 0 the chance of a wrong label"""
    for delta, tau in [(1.0, 0.2), (0.3, 0.2), (0.5, 1.0), (0.01, 0.05)]:
        got = _float(fn(delta, tau), "a probability")
        want = 1 / (1 + math.exp(delta / tau))
        hint = ""
        if abs(got - (1 - want)) < 1e-6:
            hint = " - that is P(a > b), the probability of choosing the better one"
        elif abs(got - 1 / (1 + math.exp(delta * tau))) < 1e-6:
            hint = " - divide the margin by tau (a temperature), don't multiply"
        assert abs(got - want) < 1e-6, f"delta={delta}, tau={tau}: expected {want:.6f}, got {got:.6f}{hint}"


def _t_flip_limits(fn: Callable) -> None:
    """no margin: a coin flip (0.5); a clean annotator (tau -> 0) never flips; P(b > a | -delta) = 1 - P(b > a | delta)"""
    assert abs(_float(fn(0.0, 0.3), "a probability") - 0.5) < 1e-9, "with equal true rewards the annotator flips a fair coin"
    small = _float(fn(1.0, 1e-3), "a probability")
    assert 0.0 <= small < 1e-12, f"tau = 0.001, delta = 1: the flip probability must be ~0 (and not NaN), got {small}"
    assert abs(_float(fn(-0.4, 0.2), "a probability") - (1 - _float(fn(0.4, 0.2), "a probability"))) < 1e-9, (
        "swapping a and b negates delta: P(b > a | -delta) must equal P(a > b | delta) = 1 - P(b > a | delta)")


# ---------------------------------------------------------------- 05.2: the Plackett-Luce negative log-likelihood
def _pl_reference(scores, order) -> float:
    s = [float(scores[i]) for i in order]
    return -sum(s[k] - math.log(sum(math.exp(x) for x in s[k:])) for k in range(len(s)))


def _t_pl_values(fn: Callable) -> None:
    """-log P(order) = -sum_k [s_(k) - log sum_{j >= k} exp s_(j)] for scores in arbitrary order"""
    import torch

    scores = torch.tensor([0.5, 2.0, -1.0, 0.0])
    for order in ([1, 0, 3, 2], [2, 3, 0, 1], [0, 1, 2, 3]):
        got = _float(fn(scores, order), "the negative log-likelihood")
        want = _pl_reference(scores, order)
        hint = ""
        naive = -sum(float(scores[i]) - float(torch.logsumexp(scores, 0)) for i in order)
        if abs(got - naive) < 1e-5:
            hint = " - remove each chosen item from the pool: the k-th choice is among the items not yet ranked"
        elif abs(got - _pl_reference(scores, [0, 1, 2, 3])) < 1e-5 and order != [0, 1, 2, 3]:
            hint = " - reorder the scores by `order` (best first) before computing"
        assert abs(got - want) < 1e-5, f"order {order}: expected {want:.5f}, got {got:.5f}{hint}"


def _t_pl_properties(fn: Callable) -> None:
    """K = 2 is the Bradley-Terry loss; the probabilities of all K! orders sum to one; shift invariance"""
    import itertools

    import torch

    s = torch.tensor([1.3, -0.2])
    bt = -math.log(1 / (1 + math.exp(-(1.3 + 0.2))))
    assert abs(_float(fn(s, [0, 1]), "the NLL") - bt) < 1e-5, f"K = 2 must give -log sigmoid(s_w - s_l) = {bt:.5f}"
    x = torch.tensor([0.3, -1.0, 2.0])
    total = sum(math.exp(-_float(fn(x, list(p)), "the NLL")) for p in itertools.permutations(range(3)))
    assert abs(total - 1.0) < 1e-4, f"exp(-NLL) over all 6 orders of 3 items must sum to 1, got {total:.4f}"
    assert abs(_float(fn(x + 5.0, [2, 0, 1]), "the NLL") - _float(fn(x, [2, 0, 1]), "the NLL")) < 1e-4, (
        "adding a constant to every score must not change the likelihood (only differences matter)")


# ---------------------------------------------------------------- 05.3: per-prompt centering
def _t_center_values(fn: Callable) -> None:
    """subtract each prompt's mean reward; differences within a prompt are kept"""
    import torch

    r = torch.tensor([1.0, 3.0, 10.0, 11.0, 12.0, -2.0])
    ids = torch.tensor([0, 0, 1, 1, 1, 2])
    got = _tensor(fn(r, ids), "centered rewards", (6,))
    want = torch.tensor([-1.0, 1.0, -1.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    hint = ""
    if torch.allclose(got, (r - r.mean()).double(), atol=1e-5):
        hint = " - that subtracts the batch's mean; subtract each prompt's own mean"
    elif torch.allclose(got[:2], torch.tensor([-1.0, 1.0], dtype=torch.float64) / (2 ** 0.5), atol=1e-4):
        hint = " - don't divide by a standard deviation: centering keeps the scale (the margins) as it is"
    assert torch.allclose(got, want, atol=1e-5), f"expected {want.tolist()}, got {got.tolist()}{hint}"


def _t_center_unsorted(fn: Callable) -> None:
    """prompt ids in any order (not sorted, not contiguous); the result is invariant to a per-prompt offset"""
    import torch

    g = torch.Generator().manual_seed(0)
    ids = torch.tensor([7, 2, 7, 5, 2, 7, 5, 2])
    r = torch.randn(8, generator=g)
    offset = torch.tensor([{7: 3.0, 2: -1.5, 5: 10.0}[int(i)] for i in ids])
    a = _tensor(fn(r, ids), "centered rewards", (8,))
    b = _tensor(fn(r + offset, ids), "centered rewards", (8,))
    assert torch.allclose(a, b, atol=1e-5), "a constant added to all of one prompt's rewards must not change the result"
    for i in (7, 2, 5):
        m = ids == i
        assert abs(float(a[m].mean())) < 1e-5, f"prompt {i}'s centered rewards must average 0, got {float(a[m].mean()):.4f}"
        assert torch.allclose(a[m] - a[m][0], (r[m] - r[m][0]).double(), atol=1e-5), "keep the differences within a prompt"


EXERCISES: dict[str, Exercise] = {
    "05.1": Exercise("how often a Bradley-Terry annotator flips a pair", [_t_flip_values, _t_flip_limits], "flip_probability"),
    "05.2": Exercise("the Plackett-Luce negative log-likelihood of one ranking", [_t_pl_values, _t_pl_properties],
                     "plackett_luce_nll"),
    "05.3": Exercise("centering rewards per prompt", [_t_center_values, _t_center_unsorted], "center_per_prompt"),
}
