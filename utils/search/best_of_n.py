"""Best-of-N: sample N completions once, pick one by a score or by a vote, and measure accuracy against N.

Everything here works on a pool of ``M`` samples per problem drawn once (``correct`` ``[P, M]``), and estimates
the accuracy at a smaller ``N`` by **subsampling**: ``repeats`` random ``N``-subsets (without replacement) per
problem, so a whole accuracy-vs-N curve costs one sampling pass. Averaged over subsets the estimate is unbiased
for "best of N fresh samples" (a U-statistic); at ``N = M`` only the tie-breaking is random.

* :func:`rerank_curve` - pick the highest-scoring sample of each subset (ORM, PRM, any verifier score).
* :func:`majority_curve` - self-consistency: the most frequent answer of each subset
  (:func:`utils.lm.evaluation.majority_correct`).
* :func:`oracle_curve` - a perfect verifier: correct if *any* sample of the subset is, i.e. unbiased pass@N
  (:func:`utils.lm.evaluation.pass_at_k`) - the upper bound of every reranker.
* :func:`bootstrap_ci` - a percentile interval over problems (for a difference of two rerankers, pass the
  per-problem difference: a paired bootstrap).

Each curve is a dict ``N -> [P]`` per-problem accuracies (means over the subsets).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..lm.evaluation import majority_correct, pass_at_k
from ..rl.policy_gradient import percentile_interval


def _check(correct: np.ndarray, ns: Sequence[int]) -> np.ndarray:
    c = np.asarray(correct, dtype=float)
    if c.ndim != 2 or c.shape[1] == 0:
        raise ValueError(f"correct must be [P, M] with M >= 1 samples per problem, got shape {c.shape}")
    bad = [n for n in ns if not 1 <= int(n) <= c.shape[1]]
    if bad:
        raise ValueError(f"every N must lie in 1..{c.shape[1]} (the samples drawn per problem), got {bad}")
    return c


def subsets(M: int, n: int, repeats: int, rng: np.random.Generator) -> np.ndarray:
    """``[repeats, n]`` indices of ``repeats`` random ``n``-subsets of ``range(M)``, each in random order."""
    return np.argsort(rng.random((repeats, M)), axis=1)[:, :n]


def best_index(scores: np.ndarray) -> np.ndarray:
    """``[..., n] -> [...]``: position of the highest score (the first one on ties; callers shuffle the order)."""
    s = np.nan_to_num(np.asarray(scores, dtype=float), nan=-np.inf)
    return s.argmax(-1)


def rerank_curve(scores: np.ndarray | torch.Tensor, correct: np.ndarray, ns: Sequence[int], repeats: int = 64,
                 seed: int = 0) -> dict[int, np.ndarray]:
    """Best-of-N by a score: ``scores`` and ``correct`` ``[P, M]``; returns ``N -> [P]`` the chance that the
    top-scored sample of a random ``N``-subset is correct (ties broken at random, NaN scores lose)."""
    c = _check(correct, ns)
    s = np.asarray(scores.cpu() if isinstance(scores, torch.Tensor) else scores, dtype=float)
    if s.shape != c.shape:
        raise ValueError(f"scores {s.shape} and correct {c.shape} differ in shape")
    rng = np.random.default_rng(seed)
    out = {}
    for n in ns:
        idx = subsets(c.shape[1], int(n), repeats, rng)                 # [R, n], shared by every problem
        pick = idx[np.arange(repeats), best_index(s[:, idx])]         # s[:, idx]: [P, R, n] -> pick [P, R]
        out[int(n)] = np.take_along_axis(c, pick, axis=1).mean(1)
    return out


def majority_curve(answers: Sequence[Sequence[str | None]], correct: np.ndarray, ns: Sequence[int], repeats: int = 64,
                   seed: int = 0) -> dict[int, np.ndarray]:
    """Majority vote over random ``N``-subsets: ``answers`` ``P`` lists of ``M`` parsed answers (``None``: no vote)."""
    c = _check(correct, ns)
    if len(answers) != c.shape[0] or any(len(a) != c.shape[1] for a in answers):
        raise ValueError("answers must have the shape of correct: P lists of M answers")
    rng = np.random.default_rng(seed)
    out = {}
    for n in ns:
        idx = subsets(c.shape[1], int(n), repeats, rng)
        out[int(n)] = np.array([np.mean([majority_correct([a[j] for j in row], [bool(ci[j]) for j in row]) for row in idx])
                                for a, ci in zip(answers, c)])
    return out


def oracle_curve(correct: np.ndarray, ns: Sequence[int]) -> dict[int, np.ndarray]:
    """A perfect verifier picks a correct sample whenever the subset holds one: unbiased pass@N per problem."""
    c = _check(correct, ns)
    M = c.shape[1]
    return {int(n): np.array([pass_at_k(M, int(row.sum()), int(n)) for row in c]) for n in ns}


def bootstrap_ci(per_problem: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean over problems and its percentile bootstrap interval (problems resampled)."""
    x = np.asarray(per_problem, dtype=float).reshape(-1)
    if x.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, (n_boot, x.size))].mean(1)
    lo, hi = percentile_interval(torch.from_numpy(means), level)
    return float(x.mean()), lo, hi


def curve_table(curves: dict[str, dict[int, np.ndarray]], n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """Rows ``{"method", "N", "acc", "low", "high"}`` of several curves, with bootstrap intervals."""
    rows = []
    for name, cur in curves.items():
        for n, v in cur.items():
            m, lo, hi = bootstrap_ci(v, n_boot, seed=seed)
            rows.append({"method": name, "N": n, "acc": m, "low": lo, "high": hi})
    return rows
