"""Graders of chapter 00's exercises: each test takes the student's function and raises ``AssertionError``
with a helpful message on failure (see :func:`utils.exercises.grade`)."""
from __future__ import annotations

import itertools
import random
from math import comb
from typing import Any, Callable

Test = Callable[[Callable[..., Any]], None]


# ---------------------------------------------------------------- 00.1: unbiased pass@k
def _brute_pass_at_k(n: int, c: int, k: int) -> float:
    outcomes = [1] * c + [0] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(outcomes[i] for i in s) for s in subsets) / len(subsets)


def _t_pass_edge(fn: Callable) -> None:
    """edge cases: c=0 gives 0, c=n gives 1, k=1 gives c/n"""
    assert abs(fn(10, 0, 3) - 0.0) < 1e-9, f"pass@3 with no correct sample should be 0, got {fn(10, 0, 3)}"
    assert abs(fn(10, 10, 3) - 1.0) < 1e-9, f"pass@3 with all samples correct should be 1, got {fn(10, 10, 3)}"
    assert abs(fn(10, 3, 1) - 0.3) < 1e-9, f"pass@1 is c/n = 0.3, got {fn(10, 3, 1)}"


def _t_pass_brute(fn: Callable) -> None:
    """agrees with brute-force enumeration of all k-subsets for n <= 8"""
    for n in range(1, 9):
        for c in range(n + 1):
            for k in range(1, n + 1):
                want, got = _brute_pass_at_k(n, c, k), fn(n, c, k)
                assert abs(got - want) < 1e-9, f"n={n}, c={c}, k={k}: expected {want:.6f}, got {got}"


def _t_pass_large(fn: Callable) -> None:
    """stays finite and exact for large n (no factorial overflow)"""
    got = fn(1000, 7, 100)
    want = 1 - comb(993, 100) / comb(1000, 100)
    assert abs(got - want) < 1e-9, f"n=1000, c=7, k=100: expected {want:.6f}, got {got}"


# ---------------------------------------------------------------- 00.2: a reward that never crashes
def _t_reward_values(fn: Callable) -> None:
    """1.0 for a correct well-formed answer, 0.5 for well-formed but wrong, 0.0 otherwise"""
    from ..world.countdown import make_problem

    p = make_problem([3, 5, 7], 26)
    cases = [("<think>7*3=21,21+5=26</think><answer>(7*3)+5</answer>", 1.0),
             ("<think></think><answer>5+(3*7)</answer>", 1.0),
             ("<think>7*3=21</think><answer>7*3</answer>", 0.5),
             ("<answer>(7*3)+5</answer>", 0.0), ("(7*3)+5", 0.0), ("", 0.0)]
    for text, want in cases:
        got = fn(p, text)
        assert got == want, f"reward({text!r}) should be {want}, got {got}"


def _t_reward_garbage(fn: Callable) -> None:
    """never raises on garbage: None, bytes, huge strings, unbalanced tags, random characters"""
    from ..world.countdown import make_problem

    p = make_problem([3, 5, 7], 26)
    rng = random.Random(0)
    junk: list[Any] = [None, 42, b"<answer>1</answer>", "<answer>", "</answer><answer>", "<think>" * 1000,
                       "<think></think><answer>" + "9" * 5000 + "</answer>", "<think></think><answer>1/0</answer>",
                       "<think></think><answer>((((((((</answer>"]
    junk += ["".join(rng.choice("<>/thinkanswer()+-*0123456789 ") for _ in range(rng.randint(0, 80))) for _ in range(200)]
    for j in junk:
        try:
            r = fn(p, j)
        except Exception as e:  # noqa: BLE001
            raise AssertionError(f"raised {type(e).__name__} on input {str(j)[:60]!r}") from None
        assert r in (0.0, 0.5, 1.0), f"reward must be 0, 0.5 or 1, got {r!r} for {str(j)[:60]!r}"


EXERCISES: dict[str, tuple[str, list[Test]]] = {
    "00.1": ("the unbiased pass@k estimator", [_t_pass_edge, _t_pass_brute, _t_pass_large]),
    "00.2": ("a reward function that never crashes", [_t_reward_values, _t_reward_garbage]),
}
