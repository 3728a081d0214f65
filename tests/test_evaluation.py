"""pass@k against brute force, maj@k, and the evaluation table."""
import itertools

import numpy as np
import pytest

from utils.lm.evaluation import EvalResult, maj_at_k, majority_correct, pass_at_k
from utils.world import format_completion, sample_problems


def brute(n, c, k):
    outcomes = [1] * c + [0] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(outcomes[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_matches_enumeration(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute(n, c, k), abs=1e-12)


def test_pass_at_k_errors_and_monotone():
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 5)
    vals = [pass_at_k(16, 3, k) for k in range(1, 17)]
    assert all(a <= b for a, b in zip(vals, vals[1:]))


def test_majority_vote():
    assert majority_correct(["5", "5", "7"], [True, True, False])
    assert not majority_correct(["5", "7", "7"], [True, False, False])
    assert majority_correct([" 7", "7 ", None, None], [True, True, False, False])  # whitespace, abstentions
    assert not majority_correct([None, None], [False, False])
    assert maj_at_k(["1", "1", "2", "2"], [True, True, False, False], 2) == 0.5


def test_table_rows():
    probs = sample_problems("addition", 2, 4, "test")
    right = [p.completion() for p in probs]
    wrong = format_completion("", "x")
    samples = np.array([[1, 0, 0, 0]] * 2 + [[0, 0, 0, 0]] * 2, dtype=float)
    texts = [[right[i], wrong, wrong, wrong] for i in range(4)]
    res = EvalResult(probs, np.array([1.0, 1.0, 0.0, 0.0]), right[:2] + [wrong, wrong], samples, texts, ks=(1, 4))
    (row,) = res.table()
    assert row["greedy"] == 0.5 and row["format"] == 1.0
    assert row["pass@1"] == pytest.approx(0.125) and row["pass@4"] == pytest.approx(0.5)
    assert row["maj@4"] == 0.0  # the wrong answer "x" wins every vote 3:1
    assert row["step_valid"] == pytest.approx(0.5)
