"""utils.stats: known answers for ROC AUC and percentiles, the bootstrap's coverage and width, the paired
bootstrap and the permutation test, errors on bad input, and one seed giving one result."""
import math

import numpy as np
import pytest
import torch

from utils.stats import (
    Interval,
    as_array,
    bootstrap_ci,
    bootstrap_indices,
    paired_bootstrap,
    paired_permutation_test,
    percentile_interval,
    roc_auc,
)


# ---------------------------------------------------------------------------------------------- ROC AUC
def test_roc_auc_hand_example_with_a_tie():
    # positives score {0.4, 0.8}, negatives {0.1, 0.4}: of the 4 (pos, neg) pairs 3 are ordered, 1 tied -> 3.5 / 4
    assert roc_auc([0.1, 0.4, 0.4, 0.8], [0, 0, 1, 1]) == 0.875
    assert roc_auc([1, 2, 3], [0, 0, 1]) == 1.0 and roc_auc([3, 2, 1], [0, 0, 1]) == 0.0
    assert roc_auc([5, 5, 5, 5], [0, 1, 0, 1]) == 0.5                        # all tied: chance
    assert roc_auc(torch.tensor([0.1, 0.4, 0.4, 0.8]), torch.tensor([0.0, 0.0, 1.0, 1.0])) == 0.875


def test_roc_auc_is_the_pairwise_probability():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 5, 300).astype(float)            # many ties
    y = (rng.random(300) < 0.3 + 0.1 * s).astype(float)
    pos, neg = s[y > 0.5], s[y <= 0.5]
    want = (pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean()
    assert abs(roc_auc(s, y) - want) < 1e-12


def test_roc_auc_without_both_classes_or_with_mismatched_input():
    assert math.isnan(roc_auc([1, 2], [1, 1])) and math.isnan(roc_auc([], []))
    with pytest.raises(ValueError):
        roc_auc([1, 2], [1])


# ---------------------------------------------------------------------------------------------- percentiles
def test_percentile_interval_matches_numpy_and_drops_non_finite_values():
    v = np.random.default_rng(1).normal(size=501)
    for level in (0.5, 0.9, 0.95):
        a = (1 - level) / 2
        assert percentile_interval(v, level) == (np.quantile(v, a), np.quantile(v, 1 - a))
    assert percentile_interval(torch.tensor(v), 0.9) == percentile_interval(v, 0.9)
    with_bad = np.r_[v, np.nan, np.inf, -np.inf]
    assert percentile_interval(with_bad) == percentile_interval(v)
    assert percentile_interval([1.0, 2.0, 3.0, np.nan], 0.5) == (1.5, 2.5)
    assert all(math.isnan(x) for x in percentile_interval([np.nan, np.inf]))
    for level in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError):
            percentile_interval(v, level)


# ---------------------------------------------------------------------------------------------- bootstrap
def test_bootstrap_ci_contains_the_mean_and_has_the_binomial_width():
    x = np.r_[np.ones(50), np.zeros(50)]
    m, lo, hi = bootstrap_ci(x, n_boot=2000)
    assert m == 0.5 and lo < 0.5 < hi and 0.05 < hi - lo < 0.3      # ~ +-1.96 * 0.05
    assert bootstrap_ci(np.ones(10))[1:] == (1.0, 1.0)              # no spread, no width
    assert isinstance(bootstrap_ci(x), Interval)


def test_bootstrap_width_shrinks_like_one_over_sqrt_n():
    rng = np.random.default_rng(2)
    small, large = bootstrap_ci(rng.normal(size=100)), bootstrap_ci(rng.normal(size=1600))
    ratio = (small.hi - small.lo) / (large.hi - large.lo)
    # sqrt(1600 / 100) = 4; the two sample stds and the bootstrap's own noise move it by ~10 %
    assert 3.2 < ratio < 5.0
    assert small.lo < small.mean < small.hi and large.lo < large.mean < large.hi


def test_bootstrap_indices_are_resamples_with_replacement():
    idx = bootstrap_indices(7, 500, seed=3)
    assert idx.shape == (500, 7) and idx.min() >= 0 and idx.max() <= 6
    assert (np.diff(np.sort(idx, 1), axis=1) == 0).any()              # with replacement: repeats happen
    assert np.array_equal(idx, bootstrap_indices(7, 500, seed=3))
    for n, n_boot in ((0, 10), (5, 0)):
        with pytest.raises(ValueError):
            bootstrap_indices(n, n_boot)


# ---------------------------------------------------------------------------------------------- paired comparisons
def test_paired_bootstrap_of_a_constant_shift_is_a_point():
    b = np.random.default_rng(4).integers(0, 10, 60).astype(float)
    m, lo, hi = paired_bootstrap(b + 0.25, b)                        # 0.25 is exact in binary: every d_i = 0.25
    assert m == lo == hi == 0.25
    assert paired_bootstrap(b + 0.25, b).excludes_zero()


def test_paired_bootstrap_brackets_the_mean_and_reacts_to_the_data():
    rng = np.random.default_rng(0)
    b = rng.normal(0.0, 1.0, 400)
    shifted = paired_bootstrap(b + rng.normal(0.5, 1.0, 400), b)
    assert shifted.lo < shifted.mean < shifted.hi and shifted.lo > 0
    null = paired_bootstrap(b + rng.normal(0.0, 1.0, 400), b)
    assert null.lo < 0 < null.hi and not null.excludes_zero()
    a = b + rng.normal(0.2, 1.0, 400)
    assert paired_bootstrap(a, b, seed=5) == bootstrap_ci(a - b, seed=5)   # pairing = bootstrapping the difference


def test_paired_permutation_test_small_for_a_shift_large_for_exchangeable_data():
    rng = np.random.default_rng(6)
    b = rng.normal(size=40)
    p = paired_permutation_test(b + 1.0 + 0.1 * rng.normal(size=40), b, n_perm=2000)
    assert 1 / 2001 <= p < 0.01                                         # never 0: the observed mean counts
    assert paired_permutation_test(b, b, n_perm=500) == 1.0            # no difference at all
    # exchangeable arms: the p-values of many data sets spread over (0, 1], about 5 % of them below 0.05
    ps = np.array([paired_permutation_test(*rng.normal(size=(2, 20)), n_perm=499, seed=s) for s in range(300)])
    assert ps.min() > 0 and 0.4 < ps.mean() < 0.6 and (ps < 0.05).mean() < 0.1


def test_errors_on_empty_or_mismatched_input():
    with pytest.raises(ValueError):
        bootstrap_ci(np.array([]))
    with pytest.raises(ValueError):
        paired_bootstrap([], [])
    with pytest.raises(ValueError):
        paired_bootstrap([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        paired_permutation_test([], [])
    with pytest.raises(ValueError):
        paired_permutation_test([1.0, 2.0, 3.0], [1.0, 2.0])


def test_same_seed_same_result():
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=50), rng.normal(size=50)
    assert bootstrap_ci(a, seed=1) == bootstrap_ci(a, seed=1) != bootstrap_ci(a, seed=2)
    assert paired_bootstrap(a, b, seed=1) == paired_bootstrap(a, b, seed=1)
    assert paired_permutation_test(a, b, seed=1) == paired_permutation_test(a, b, seed=1)
    assert bootstrap_ci(torch.tensor(a), seed=1) == bootstrap_ci(a, seed=1)   # a tensor reads as the same numbers


def test_interval_and_as_array():
    m, lo, hi = Interval(0.1, -0.2, 0.3)
    assert (m, lo, hi) == (0.1, -0.2, 0.3) and not Interval(0.1, -0.2, 0.3).excludes_zero()
    assert Interval(-0.5, -0.7, -0.1).excludes_zero() and str(Interval(0.1, -0.2, 0.3)) == "+0.100 [-0.200, +0.300]"
    assert as_array(torch.ones(2, 3)).shape == (6,) and as_array([1, 2]).dtype == np.float64
