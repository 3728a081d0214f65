"""Graders of chapter 00's exercises: each test takes the student's function and raises ``AssertionError``
with a helpful message on failure (see :func:`utils.exercises.grade`)."""
from __future__ import annotations

import itertools
import random
from math import comb
from typing import Any, Callable

from .grader import Exercise

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


# ---------------------------------------------------------------- 00.3: pass@k with a standard error over problems
def _ref_pass_se(correct: Any, k: int) -> tuple[float, float]:
    import numpy as np

    a = np.asarray(correct, dtype=float)
    n = a.shape[1]
    per = np.array([1.0 - comb(n - int(c), k) / comb(n, k) for c in a.sum(1)])
    return float(per.mean()), float(per.std(ddof=1) / np.sqrt(len(per)))


def _pair(out: Any) -> tuple[float, float]:
    assert isinstance(out, (tuple, list)) and len(out) == 2, f"return a pair (mean, standard error), got {out!r}"
    return float(out[0]), float(out[1])


def _t_se_hand(fn: Callable) -> None:
    """a 3-problem example by hand: per-problem pass@2 = 5/6, 1/2, 0 (n = 4 samples each)"""
    import numpy as np

    correct = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    # pass@2 with n=4: c=2 -> 1 - C(2,2)/C(4,2) = 5/6, c=1 -> 1 - C(3,2)/C(4,2) = 1/2, c=0 -> 0
    want = _ref_pass_se(correct, 2)
    got = _pair(fn(correct, 2))
    assert abs(got[0] - want[0]) < 1e-9, f"mean pass@2 should be {want[0]:.6f} (unbiased estimator per problem), got {got[0]:.6f}"
    assert abs(got[1] - want[1]) < 1e-9, (f"standard error should be {want[1]:.6f} (sample std with ddof=1 of the "
                                          f"per-problem estimates, over sqrt(#problems)), got {got[1]:.6f}")


def _t_se_random(fn: Callable) -> None:
    """agrees with the reference on random 0/1 sample matrices of several shapes and k"""
    import numpy as np

    rng = np.random.default_rng(0)
    for P, n in [(2, 1), (5, 4), (40, 16), (200, 10)]:
        p = rng.uniform(0, 1, size=(P, 1))
        correct = (rng.uniform(size=(P, n)) < p).astype(int)
        for k in sorted({1, max(1, n // 2), n}):
            want, got = _ref_pass_se(correct, k), _pair(fn(correct, k))
            assert abs(got[0] - want[0]) < 1e-9 and abs(got[1] - want[1]) < 1e-9, (
                f"P={P}, n={n}, k={k}: expected (mean, s.e.) = ({want[0]:.6f}, {want[1]:.6f}), got ({got[0]:.6f}, {got[1]:.6f})")


def _t_se_problems_not_samples(fn: Callable) -> None:
    """the error bar is over problems: identical problems give s.e. 0, however noisy each one's samples"""
    import numpy as np

    correct = np.tile(np.array([[1, 0, 1, 0, 0, 0, 0, 0]]), (30, 1))
    mean, se = _pair(fn(correct, 3))
    assert abs(se) < 1e-12, f"30 identical problems: the spread of per-problem estimates is 0, so s.e. = 0, got {se}"
    assert abs(mean - (1 - comb(6, 3) / comb(8, 3))) < 1e-9, f"mean pass@3 should be {1 - comb(6, 3) / comb(8, 3):.6f}, got {mean}"


# ---------------------------------------------------------------- 00.4: majority vote with ties broken at random
def _t_vote_clear(fn: Callable) -> None:
    """a clear majority: 1.0 if the most frequent answer is correct, else 0.0"""
    cases = [(["5", "5", "7"], [True, True, False], 1.0), (["5", "7", "7"], [True, False, False], 0.0),
             (["12"], [True], 1.0), (["3", "3", "3", "4"], [False, False, False, True], 0.0)]
    for answers, correct, want in cases:
        got = fn(answers, correct)
        assert abs(float(got) - want) < 1e-9, f"vote({answers}, {correct}) should be {want}, got {got}"


def _t_vote_ties(fn: Callable) -> None:
    """ties: the chance that a uniformly random winner among the tied answers is correct"""
    cases = [(["5", "7"], [True, False], 0.5), (["7", "5"], [False, True], 0.5),
             (["9", "5", "5", "7", "7"], [False, True, True, False, False], 0.5),
             (["1", "2", "3"], [False, False, True], 1 / 3), (["2", "1", "1", "2", "3", "3"], [True, False, False, True, False, False], 1 / 3)]
    for answers, correct, want in cases:
        got = fn(answers, correct)
        assert abs(float(got) - want) < 1e-9, f"vote({answers}, {correct}) should be {want:.4f} (a tie), got {got}"


def _t_vote_abstain(fn: Callable) -> None:
    """None and blank answers abstain; whitespace does not split votes; no votes at all gives 0.0"""
    cases = [([" 7", "7 ", None, None, "3"], [True, True, False, False, False], 1.0),
             ([None, None, None, "4"], [False, False, False, True], 1.0),
             (["", " ", None, "4", "8"], [False, False, False, True, False], 0.5),
             ([None, None], [False, False], 0.0), (["", "  "], [False, False], 0.0)]
    for answers, correct, want in cases:
        got = fn(answers, correct)
        assert abs(float(got) - want) < 1e-9, f"vote({answers}, {correct}) should be {want}, got {got}"


EXERCISES: dict[str, Exercise] = {
    "00.1": Exercise("the unbiased pass@k estimator", [_t_pass_edge, _t_pass_brute, _t_pass_large], "pass_at_k"),
    "00.2": Exercise("a reward function that never crashes", [_t_reward_values, _t_reward_garbage], "half_credit_reward"),
    "00.3": Exercise("pass@k with a standard error over problems", [_t_se_hand, _t_se_random, _t_se_problems_not_samples],
                     "pass_at_k_with_se"),
    "00.4": Exercise("majority vote with ties broken at random", [_t_vote_clear, _t_vote_ties, _t_vote_abstain],
                     "majority_vote_random_ties"),
}
