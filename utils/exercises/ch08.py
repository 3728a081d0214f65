"""Graders of chapter 08's exercises: each test takes the student's function and raises ``AssertionError``
with a helpful message on failure (see :func:`utils.exercises.grade`)."""
from __future__ import annotations

import math
import random
from typing import Any, Callable

from .grader import Exercise

Test = Callable[[Callable[..., Any]], None]


# ---------------------------------------------------------------- 08.1: the KL of best-of-N
def _t_kl_values(fn: Callable) -> None:
    """KL(best-of-N || reference) = log N - (N - 1) / N nats, for N = 1, 2, 4, 16, 100"""
    for N in [1, 2, 4, 16, 100]:
        got, want = float(fn(N)), math.log(N) - (N - 1) / N
        hint = ""
        if abs(got - math.log(N)) < 1e-9 and N > 1:
            hint = " - that is log N alone: the best of N is not uniform over N outcomes (subtract (N - 1) / N)"
        elif abs(got - math.log2(N) + (N - 1) / N) < 1e-9 and N > 2:
            hint = " - use the natural log (nats)"
        assert abs(got - want) < 1e-9, f"N={N}: expected {want:.6f}, got {got:.6f}{hint}"


def _t_kl_invalid(fn: Callable) -> None:
    """N < 1 raises a ValueError with a message"""
    for bad in [0, -3]:
        try:
            fn(bad)
        except ValueError:
            continue
        raise AssertionError(f"my_bon_kl({bad}) should raise ValueError (best-of-N needs N >= 1)")


# ---------------------------------------------------------------- 08.2: the best-of-N pick weights
def _weights(n: int, N: int) -> list[float]:
    total = math.comb(n, N)
    return [math.comb(i, N - 1) / total for i in range(n)]


def _as_list(x: Any, n: int) -> list[float]:
    import torch

    t = torch.as_tensor(x, dtype=torch.float64).reshape(-1)
    assert t.numel() == n, f"return {n} weights (one per rank), got {t.numel()}"
    return t.tolist()


def _t_weights_values(fn: Callable) -> None:
    """P(rank i is the best of a random N-subset) = C(i, N-1) / C(n, N) for (n, N) = (5, 2), (8, 3), (6, 6), (4, 1)"""
    for n, N in [(5, 2), (8, 3), (6, 6), (4, 1)]:
        got, want = _as_list(fn(n, N), n), _weights(n, N)
        hint = ""
        rep = [((i + 1) / n) ** N - (i / n) ** N for i in range(n)]
        if all(abs(g - r) < 1e-6 for g, r in zip(got, rep)) and N > 1:
            hint = " - that is sampling the n stored samples with replacement; a subset holds N different samples"
        assert all(abs(g - w) < 1e-6 for g, w in zip(got, want)), (
            f"n={n}, N={N}: expected {[round(w, 4) for w in want]}, got {[round(g, 4) for g in got]}{hint}")


def _t_weights_brute_force(fn: Callable) -> None:
    """agrees with counting every N-subset of n = 7 (N = 1 ... 7) and sums to 1"""
    from itertools import combinations

    n = 7
    for N in range(1, n + 1):
        counts = [0] * n
        subsets = list(combinations(range(n), N))
        for s in subsets:
            counts[max(s)] += 1
        got = _as_list(fn(n, N), n)
        assert abs(sum(got) - 1) < 1e-6, f"n={n}, N={N}: the weights must sum to 1, got {sum(got):.6f}"
        assert all(abs(g - c / len(subsets)) < 1e-6 for g, c in zip(got, counts)), f"n={n}, N={N}: wrong weights {got}"


def _t_weights_large(fn: Callable) -> None:
    """stays finite and exact for n = 200, N = 64 (no overflow of the binomials in float)"""
    got = _as_list(fn(200, 64), 200)
    want = _weights(200, 64)
    assert all(math.isfinite(g) for g in got), "non-finite weights: compute the binomials in log space or as exact integers"
    assert max(abs(g - w) for g, w in zip(got, want)) < 1e-6, "wrong weights for n=200, N=64"


# ---------------------------------------------------------------- 08.3: fitting Gao et al.'s BoN form
def _gao(kl: list[float], a: float, b: float) -> list[float]:
    return [math.sqrt(k) * (a - b * math.sqrt(k)) for k in kl]


_KL = [0.0, 0.1931, 0.6363, 1.2044, 1.8351, 2.4970, 3.1745]  # log N - (N-1)/N for N = 1 ... 64


def _fit(fn: Callable, kl: list[float], gain: list[float]) -> tuple[float, float]:
    import numpy as np

    out = fn(np.array(kl), np.array(gain))
    assert len(out) == 2, f"return (alpha, beta), got {out!r}"
    return float(out[0]), float(out[1])


def _t_fit_exact(fn: Callable) -> None:
    """recovers (alpha, beta) = (0.4, 0.25) and (0.1, -0.05) from exact curves"""
    for a, b in [(0.4, 0.25), (0.1, -0.05)]:
        got = _fit(fn, _KL, _gao(_KL, a, b))
        hint = ""
        if abs(got[0] - a) > 1e-3:
            hint = " - fit in d = sqrt(KL), not in KL itself" if b > 0 else ""
        assert abs(got[0] - a) < 1e-4 and abs(got[1] - b) < 1e-4, f"expected ({a}, {b}), got {got}{hint}"


def _t_fit_least_squares(fn: Callable) -> None:
    """on a noisy curve, returns the least-squares solution (no intercept, the sign convention d (alpha - beta d))"""
    import numpy as np

    rng = random.Random(3)
    gain = [g + rng.gauss(0, 0.02) for g in _gao(_KL, 0.3, 0.15)]
    d = np.sqrt(np.array(_KL))
    (a, b), *_ = np.linalg.lstsq(np.stack([d, -d * d], 1), np.array(gain), rcond=None)
    got = _fit(fn, _KL, gain)
    hint = " - the model has no intercept: gain(0) = 0" if abs(got[0] - a) > 1e-3 else ""
    if abs(got[1] + b) < 1e-4 and abs(b) > 1e-3:
        hint = " - beta has the wrong sign: the form is d (alpha - beta d)"
    assert abs(got[0] - a) < 1e-4 and abs(got[1] - b) < 1e-4, f"expected ({a:.4f}, {b:.4f}), got ({got[0]:.4f}, {got[1]:.4f}){hint}"


EXERCISES: dict[str, Exercise] = {
    "08.1": Exercise("the KL of best-of-N", [_t_kl_values, _t_kl_invalid], "bon_kl"),
    "08.2": Exercise("which stored sample best-of-N picks", [_t_weights_values, _t_weights_brute_force, _t_weights_large],
                     "best_of_n_weights"),
    "08.3": Exercise("fitting Gao et al.'s best-of-N form", [_t_fit_exact, _t_fit_least_squares], "fit_bon"),
}
