"""Best-of-N from one sampling pass: reranking, majority vote, the oracle bound, bootstrap intervals."""
from math import comb

import numpy as np
import pytest

from utils.search import bootstrap_ci, curve_table, majority_curve, oracle_curve, rerank_curve


def _exact_best_of_n(scores, correct, n):
    """Exact expectation over all n-subsets (distinct scores): the j-th best is picked w.p. C(M-1-j, n-1) / C(M, n)."""
    order = np.argsort(-np.asarray(scores))
    M = len(scores)
    return sum(correct[i] * comb(M - 1 - j, n - 1) for j, i in enumerate(order)) / comb(M, n)


def test_rerank_curve_is_unbiased_for_subsets():
    rng = np.random.default_rng(0)
    scores = rng.random((3, 8))
    correct = (rng.random((3, 8)) < 0.4).astype(float)
    cur = rerank_curve(scores, correct, [1, 2, 4, 8], repeats=4000, seed=1)
    for n, v in cur.items():
        want = [_exact_best_of_n(s, c, n) for s, c in zip(scores, correct)]
        assert np.allclose(v, want, atol=0.03), (n, v, want)   # 4000 subsets: standard error <= 0.008
    assert np.allclose(cur[1], correct.mean(1), atol=0.03)      # N = 1: a random sample
    assert np.allclose(cur[8], correct[np.arange(3), scores.argmax(1)])


def test_rerank_ties_and_nan():
    correct = np.array([[1.0, 0.0, 0.0, 0.0]])
    cur = rerank_curve(np.zeros((1, 4)), correct, [4], repeats=4000)
    assert abs(cur[4][0] - 0.25) < 0.03                         # all tied: a random pick, not always the first
    cur = rerank_curve(np.array([[np.nan, 0.0, 0.0, 5.0]]), correct, [4])
    assert cur[4][0] == 0.0                                       # a NaN score never wins
    with pytest.raises(ValueError):
        rerank_curve(np.zeros((1, 3)), correct, [2])
    with pytest.raises(ValueError):
        rerank_curve(np.zeros((1, 4)), correct, [5])


def test_oracle_and_majority():
    correct = np.array([[1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]], dtype=float)
    orc = oracle_curve(correct, [1, 2, 4])
    assert np.allclose(orc[1], [0.25, 0, 1]) and np.allclose(orc[2], [0.5, 0, 1]) and np.allclose(orc[4], [1, 0, 1])
    answers = [["5", "7", "7", "7"], [None, None, "3", "3"], ["9", "9", "9", "9"]]
    maj = majority_curve(answers, correct, [1, 4], repeats=200)
    assert np.allclose(maj[4], [0, 0, 1])
    assert np.allclose(maj[1], [0.25, 0, 1], atol=0.1)
    scores = np.random.default_rng(0).random((3, 4))
    rr = rerank_curve(scores, correct, [1, 2, 4], repeats=2000)
    for n in (1, 2, 4):   # the oracle is exact, the reranker an average over 2000 subsets: std error <= 0.011
        assert (rr[n] <= orc[n] + 0.05).all() and (maj[n] <= orc[n] + 1e-9).all() if n in maj else True
    with pytest.raises(ValueError):
        majority_curve(answers[:2], correct, [1])


def test_bootstrap_ci():
    x = np.r_[np.ones(50), np.zeros(50)]
    m, lo, hi = bootstrap_ci(x, n_boot=2000)
    assert m == 0.5 and lo < 0.5 < hi and 0.05 < hi - lo < 0.3      # ~ +-1.96 * 0.05
    assert bootstrap_ci(np.ones(10))[1:] == (1.0, 1.0)
    with pytest.raises(ValueError):
        bootstrap_ci(np.array([]))
    rows = curve_table({"a": {1: x, 2: x}}, n_boot=100)
    assert [r["N"] for r in rows] == [1, 2] and rows[0]["method"] == "a"
