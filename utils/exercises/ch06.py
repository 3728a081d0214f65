"""Graders of chapter 06's exercises (outcome vs process rewards, best-of-N): each test takes the student's
function and raises ``AssertionError`` with a helpful message on failure (see :func:`utils.exercises.grade`)."""
from __future__ import annotations

import math
import random
from itertools import combinations
from typing import Any, Callable

from .grader import Exercise

Test = Callable[[Callable[..., Any]], None]


# ---------------------------------------------------------------- 06.1: the geometric-mean aggregation
def _t_geo_values(fn: Callable) -> None:
    """(p_1 ... p_n)^(1/n) on hand-computable step probabilities"""
    for steps, want in (([0.25, 1.0], 0.5), ([0.8], 0.8), ([0.5, 0.5, 0.5], 0.5), ([0.9, 0.1, 0.9, 0.1], 0.3)):
        got = float(fn(steps))
        hint = ""
        if abs(got - math.prod(steps)) < 1e-9 and abs(want - math.prod(steps)) > 1e-6:
            hint = " - that is the plain product; take its n-th root (the length-normalised product)"
        elif abs(got - sum(steps) / len(steps)) < 1e-9 and abs(want - sum(steps) / len(steps)) > 1e-6:
            hint = " - that is the arithmetic mean; average the logs instead"
        assert abs(got - want) < 1e-6, f"steps {steps}: expected {want:.6f}, got {got:.6f}{hint}"


def _t_geo_edges(fn: Callable) -> None:
    """no steps (a malformed completion) scores 0, a zero step gives 0 without a math error, length does not penalise"""
    assert float(fn([])) == 0.0, "a completion without steps must score 0 (it has no verified step)"
    assert float(fn([0.0, 0.9])) == 0.0, "a step with probability 0 makes the score 0 (guard log(0))"
    a, b = float(fn([0.9] * 2)), float(fn([0.9] * 8))
    assert abs(a - b) < 1e-9, f"equal steps must give the same score at any length: {a:.4f} (2 steps) vs {b:.4f} (8 steps)"


# ---------------------------------------------------------------- 06.2: the exact expected best-of-n accuracy
def _brute(scores: list[float], correct: list[float], n: int) -> float:
    subs = list(combinations(range(len(scores)), n))
    return sum(correct[max(s, key=lambda i: scores[i])] for s in subs) / len(subs)


def _t_bon_values(fn: Callable) -> None:
    """matches the average over every n-subset of the pool (distinct scores)"""
    scores, correct = [0.9, 0.1, 0.5, 0.7, 0.3], [0.0, 1.0, 1.0, 0.0, 1.0]
    for n in range(1, 6):
        got, want = float(fn(scores, correct, n)), _brute(scores, correct, n)
        hint = ""
        if n == 1 and abs(got - 0.0) < 1e-9:
            hint = " - at n = 1 the 'best' of one sample is a random sample: the mean correctness"
        assert abs(got - want) < 1e-9, f"n={n}: expected {want:.6f}, got {got:.6f}{hint}"


def _t_bon_random(fn: Callable) -> None:
    """on random pools it is neither pass@n (any correct) nor the top-scored sample's correctness"""
    rng = random.Random(0)
    for _ in range(20):
        M = rng.randint(2, 9)
        scores = rng.sample(range(100), M)
        correct = [float(rng.random() < 0.4) for _ in range(M)]
        n = rng.randint(1, M)
        got, want = float(fn([float(s) for s in scores], correct, n)), _brute(scores, correct, n)
        assert abs(got - want) < 1e-9, f"scores {scores}, correct {correct}, n={n}: expected {want:.6f}, got {got:.6f}"


def _t_bon_bad_n(fn: Callable) -> None:
    """n outside 1..M raises ValueError"""
    for n in (0, 4):
        try:
            fn([0.1, 0.2, 0.3], [1.0, 0.0, 1.0], n)
        except ValueError:
            continue
        raise AssertionError(f"n={n} with 3 samples should raise ValueError")


# ---------------------------------------------------------------- 06.3: the score-weighted vote
def _t_vote_values(fn: Callable) -> None:
    """each answer's weight is the sum of its samples' scores; the heaviest answer wins"""
    answers = ["12", "7", "7", "12", "7"]
    scores = [0.9, 0.2, 0.3, 0.8, 0.1]                      # 12: 1.7, 7: 0.6 - the minority answer wins
    got = fn(answers, scores)
    hint = " - that is the plain majority; weight each vote by its score" if got == "7" else ""
    assert got == "12", f"expected '12' (weight 1.7 vs 0.6), got {got!r}{hint}"
    answers, scores = ["3", "5", "5", "5"], [0.95, 0.4, 0.4, 0.4]   # 5: 1.2 beats the single best sample
    got = fn(answers, scores)
    hint = " - that is best-of-N by the score alone; sum the scores per answer" if got == "3" else ""
    assert got == "5", f"expected '5' (weight 1.2 vs 0.95), got {got!r}{hint}"


def _t_vote_edges(fn: Callable) -> None:
    """no-answer samples (None) do not vote, answers are compared without whitespace, nothing to vote on gives None"""
    assert fn([None, None], [1.0, 1.0]) is None, "no sample has an answer: return None"
    got = fn([None, "4", " 4", "9"], [5.0, 0.3, 0.3, 0.5])
    assert got is not None and "".join(got.split()) == "4", f"None does not vote and ' 4' is '4': expected '4', got {got!r}"


EXERCISES: dict[str, Exercise] = {
    "06.1": Exercise("the geometric-mean (length-normalised product) PRM aggregation", [_t_geo_values, _t_geo_edges],
                     "geometric_mean"),
    "06.2": Exercise("the exact expected accuracy of best-of-n from a pool", [_t_bon_values, _t_bon_random, _t_bon_bad_n],
                     "expected_best_of_n"),
    "06.3": Exercise("the score-weighted majority vote", [_t_vote_values, _t_vote_edges], "weighted_vote"),
}
