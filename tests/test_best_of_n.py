"""Best-of-N from one sampling pass: reranking, majority vote, the oracle bound, the table of curves; the
best-of-N KL and the exact best-of-N curve over all subsets of a pool."""
import math
from itertools import combinations
from math import comb

import numpy as np
import pytest
import torch

from utils.search import best_of_n as bon
from utils.search import curve_table, majority_curve, oracle_curve, rerank_curve


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


def test_curve_table_rows_carry_their_bootstrap_interval():
    x = np.r_[np.ones(50), np.zeros(50)]
    rows = curve_table({"a": {1: x, 2: x}}, n_boot=100)
    assert [r["N"] for r in rows] == [1, 2] and rows[0]["method"] == "a"
    assert rows[0]["acc"] == 0.5 and rows[0]["low"] < 0.5 < rows[0]["high"]


def test_bon_kl_values_and_errors():
    assert bon.bon_kl(1) == 0.0
    assert bon.bon_kl(4) == pytest.approx(math.log(4) - 0.75)
    assert bon.bon_kl([1, 2]) == pytest.approx([0.0, math.log(2) - 0.5])
    with pytest.raises(ValueError, match="N >= 1"):
        bon.bon_kl(0)


def test_bon_kl_matches_the_exact_kl_of_a_fine_discrete_policy():
    K = 20000
    ref = torch.full((K,), 1.0 / K, dtype=torch.float64)
    F = ref.cumsum(0)
    for N in [2, 8, 32]:
        best = F**N - torch.cat([F.new_zeros(1), F[:-1]]) ** N     # the law of the best of N draws
        exact = float((best * (best / ref).log()).sum())
        # discreteness lowers the KL by O(N / K) relative; 1% leaves a wide margin at K = 20000
        assert exact <= bon.bon_kl(N) and abs(exact - bon.bon_kl(N)) < 0.01 * bon.bon_kl(N)


@pytest.mark.parametrize("n,N", [(5, 1), (6, 3), (7, 7), (200, 64)])
def test_best_of_n_weights_count_subsets(n, N):
    w = bon.best_of_n_weights(n, N)
    assert w.shape == (n,) and torch.isfinite(w).all()
    assert float(w.sum()) == pytest.approx(1.0)
    want = torch.tensor([math.comb(i, N - 1) / math.comb(n, N) for i in range(n)], dtype=torch.float64)
    assert torch.allclose(w, want, atol=1e-9)
    with pytest.raises(ValueError):
        bon.best_of_n_weights(3, 4)


def test_best_of_n_curve_equals_enumeration_over_subsets():
    g = torch.Generator().manual_seed(1)
    proxy, gold = torch.randn(2, 6, generator=g), torch.randn(2, 6, generator=g)
    out = bon.best_of_n_curve(proxy, gold, [1, 2, 4, 6], per_prompt=True)
    for k, N in enumerate([1, 2, 4, 6]):
        per_prompt = []
        for m in range(2):
            vals = [float(gold[m, max(s, key=lambda j: float(proxy[m, j]))]) for s in combinations(range(6), N)]
            per_prompt.append(np.mean(vals))
        assert float(out["gold_pp"][:, k].sum()) == pytest.approx(sum(per_prompt))
        assert float(out["gold"][k]) == pytest.approx(np.mean(per_prompt))
    assert float(out["gold"][0]) == pytest.approx(float(gold.mean()))    # N = 1 is the reference's mean
    assert float(out["proxy"][-1]) == pytest.approx(float(proxy.max(1).values.mean()))   # N = n: the top sample
    assert out["kl"].tolist() == pytest.approx(bon.bon_kl([1, 2, 4, 6]))


def test_best_of_n_curve_shape_errors():
    with pytest.raises(ValueError, match=r"\[M, n\]"):
        bon.best_of_n_curve(torch.zeros(3, 4), torch.zeros(3, 5), [1])
    with pytest.raises(ValueError):
        bon.best_of_n_curve(torch.zeros(3, 4), torch.zeros(3, 4), [5])


def test_a_perfect_proxy_never_hurts_and_an_anti_proxy_always_does():
    g = torch.Generator().manual_seed(2)
    gold = torch.randn(16, 32, generator=g)
    up = bon.best_of_n_curve(gold, gold, [1, 2, 4, 8, 16, 32])["gold"]
    down = bon.best_of_n_curve(-gold, gold, [1, 2, 4, 8, 16, 32])["gold"]
    assert (up.diff() > 0).all() and (down.diff() < 0).all()
