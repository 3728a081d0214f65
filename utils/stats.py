"""Statistics for measured claims: percentile intervals, bootstrap and paired bootstrap, a paired
permutation test, ROC AUC. The one home of these in the course (helper floor: numpy only, no torch needed;
torch tensors are accepted as input and read as numpy arrays).

Every resampling function draws from one seeded ``numpy.random.default_rng(seed)``, so the same call gives
the same interval on any machine. Conventions:

* ``values [N]`` are per-item numbers (one per problem, prompt or pair); the bootstrap resamples *items*.
* A **paired** comparison of two methods uses per-item numbers measured on the *same* items, ``a [N]`` and
  ``b [N]``; it resamples items jointly, i.e. it bootstraps ``a - b``. This is what makes a 2-point
  difference between two models on 208 problems detectable when each model's own interval is ±6 points.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

__all__ = ["Interval", "as_array", "bootstrap_ci", "bootstrap_indices", "paired_bootstrap", "paired_permutation_test",
           "percentile_interval", "roc_auc"]


class Interval(NamedTuple):
    """A point estimate and its interval: ``mean, lo, hi = interval`` unpacks like a tuple."""

    mean: float
    lo: float
    hi: float

    def excludes_zero(self) -> bool:
        """Whether the whole interval lies on one side of 0 (a difference "significant" at its level)."""
        return self.lo > 0 or self.hi < 0

    def __str__(self) -> str:
        return f"{self.mean:+.3f} [{self.lo:+.3f}, {self.hi:+.3f}]"


def as_array(x: Any) -> np.ndarray:
    """``x`` (a list, a numpy array or a torch tensor on any device) as a flat float64 numpy array."""
    if hasattr(x, "detach"):  # a torch tensor, without importing torch here
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64).reshape(-1)


def percentile_interval(values: Any, level: float = 0.95) -> tuple[float, float]:
    """The central ``level`` percentile interval of ``values`` (e.g. bootstrap replicates); NaNs and
    infinities are dropped, ``(nan, nan)`` if none is left. Linear interpolation between order statistics."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    v = as_array(values)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    a = (1 - level) / 2
    return float(np.quantile(v, a)), float(np.quantile(v, 1 - a))


def bootstrap_indices(n: int, n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """``[n_boot, n]`` int64 indices: ``n_boot`` resamples of ``n`` items with replacement, one per row.

    The one draw behind every bootstrap here; a statistic that is not a mean (a variance from a Gram matrix,
    an AUC) indexes its items with these rows and reads :func:`percentile_interval` of the replicates.
    """
    if n < 1 or n_boot < 1:
        raise ValueError(f"need n >= 1 items and n_boot >= 1 resamples, got n={n}, n_boot={n_boot}")
    return np.random.default_rng(seed).integers(0, n, (n_boot, n))


def bootstrap_ci(values: Any, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> Interval:
    """The mean of ``values [N]`` and its percentile bootstrap interval (items resampled with replacement)."""
    x = as_array(values)
    if x.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    means = x[bootstrap_indices(x.size, n_boot, seed)].mean(1)
    lo, hi = percentile_interval(means, level)
    return Interval(float(x.mean()), lo, hi)


def _paired(a: Any, b: Any) -> np.ndarray:
    xa, xb = as_array(a), as_array(b)
    if xa.shape != xb.shape:
        raise ValueError(f"a paired comparison needs the same items in both arms: got {xa.size} and {xb.size} values")
    return xa - xb


def paired_bootstrap(a: Any, b: Any, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> Interval:
    """``mean(a - b)`` over items and its percentile bootstrap interval, resampling items jointly.

    ``a [N]`` and ``b [N]`` are per-item measurements of two arms on the same items (problem ``i`` in both).
    """
    return bootstrap_ci(_paired(a, b), n_boot, level, seed)


def paired_permutation_test(a: Any, b: Any, n_perm: int = 10_000, seed: int = 0) -> float:
    """Two-sided p-value of "``a`` and ``b`` are exchangeable" by random sign flips of the paired differences.

    Under the null each item's two numbers could have come from either arm, so ``d_i = a_i - b_i`` is as likely
    as ``-d_i``; the p-value is the share of ``n_perm`` sign-flipped means at least as far from 0 as the observed
    one (with the observed one counted, so it is never 0).
    """
    d = _paired(a, b)
    if d.size == 0:
        raise ValueError("paired_permutation_test needs at least one pair")
    rng = np.random.default_rng(seed)
    signs = rng.choice(np.array([-1.0, 1.0]), size=(n_perm, d.size))
    null = np.abs((signs * d).mean(1))
    observed = abs(d.mean())
    return float((1 + np.sum(null >= observed - 1e-12)) / (n_perm + 1))


def roc_auc(scores: Any, labels: Any) -> float:
    """Area under the ROC curve: the chance that a random positive (label > 0.5) scores above a random negative,
    ties counting one half (the Mann-Whitney statistic, from average ranks: O(n log n)). ``nan`` without both."""
    s, y = as_array(scores), as_array(labels) > 0.5
    if s.shape != y.shape:
        raise ValueError(f"{s.size} scores but {y.size} labels")
    n1, n0 = int(y.sum()), int((~y).sum())
    if not n1 or not n0:
        return float("nan")
    _, inv, counts = np.unique(s, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - counts + (counts + 1) / 2)[inv]      # 1-based average ranks
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
