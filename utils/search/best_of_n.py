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
* :func:`curve_table` - the curves as rows with bootstrap intervals over problems
  (:func:`utils.stats.bootstrap_ci`; for two rerankers on the same problems, :func:`utils.stats.paired_bootstrap`).

Each curve is a dict ``N -> [P]`` per-problem accuracies (means over the subsets).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from ..lm.evaluation import majority_correct, pass_at_k
from ..stats import bootstrap_ci


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


# ---------------------------------------------------------------------------------------------- exact best-of-N
def bon_kl(n: int | Sequence[int]) -> float | list[float]:
    """``KL(pi_bon || pi) = log N - (N - 1) / N`` nats (Stiennon et al. 2020, App. G; exact for a proxy without ties)."""
    if isinstance(n, (list, tuple)):
        return [bon_kl(int(k)) for k in n]  # type: ignore[misc]
    if int(n) < 1:
        raise ValueError(f"best-of-N needs N >= 1, got {n}")
    return math.log(n) - (n - 1) / n


def best_of_n_weights(n: int, N: int) -> torch.Tensor:
    """``[n]`` probability that the sample of rank ``i`` (ascending, ``i = 0 ... n-1``) is the best of a uniformly
    random subset of size ``N``: ``C(i, N-1) / C(n, N)``. Sums to 1."""
    if not 1 <= N <= n:
        raise ValueError(f"need 1 <= N <= n, got N={N}, n={n}")
    i = torch.arange(n, dtype=torch.float64)
    # log C(i, N-1) - log C(n, N), zero weight where i < N-1
    logw = (torch.lgamma(i + 1) - torch.lgamma(torch.tensor(float(N))) - torch.lgamma((i - N + 2).clamp(min=1))
            - (math.lgamma(n + 1) - math.lgamma(N + 1) - math.lgamma(n - N + 1)))
    w = torch.where(i >= N - 1, logw.exp(), torch.zeros_like(logw))
    return w / w.sum()  # renormalise away rounding


def best_of_n_curve(
    proxy: torch.Tensor, gold: torch.Tensor, Ns: Sequence[int], per_prompt: bool = False,
) -> dict[str, torch.Tensor]:
    """Exact best-of-N values from ``n`` stored samples per prompt.

    Args:
        proxy: ``[M, n]`` proxy rewards (``M`` prompts, ``n`` samples each) - what picks the sample.
        gold: ``[M, n]`` gold rewards of the same samples - what we actually care about.
        Ns: the values of ``N`` (each ``1 <= N <= n``).
        per_prompt: also return the ``[M, len(Ns)]`` per-prompt values (for bootstrap intervals).

    Returns:
        ``{"N": [K], "kl": [K] (bon_kl), "proxy": [K], "gold": [K]}`` - means over prompts of the expected
        proxy and gold reward of the proxy's choice among ``N`` random samples; with ``per_prompt``, also
        ``"proxy_pp"``, ``"gold_pp"`` ``[M, K]``. Ties in the proxy are broken by sample order.
    """
    if proxy.shape != gold.shape or proxy.dim() != 2:
        raise ValueError(f"proxy and gold must both be [M, n], got {tuple(proxy.shape)} and {tuple(gold.shape)}")
    M, n = proxy.shape
    order = torch.sort(proxy.double(), dim=1, stable=True).indices  # ascending
    p_sorted = proxy.double().gather(1, order)
    g_sorted = gold.double().gather(1, order)
    W = torch.stack([best_of_n_weights(n, int(N)) for N in Ns], 1)  # [n, K]
    p_pp, g_pp = p_sorted @ W, g_sorted @ W  # [M, K]
    out = {"N": torch.tensor([int(N) for N in Ns]), "kl": torch.tensor(bon_kl(list(Ns)), dtype=torch.float64),
           "proxy": p_pp.mean(0), "gold": g_pp.mean(0)}
    if per_prompt:
        out["proxy_pp"], out["gold_pp"] = p_pp, g_pp
    return out


def curve_table(curves: dict[str, dict[int, np.ndarray]], n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """Rows ``{"method", "N", "acc", "low", "high"}`` of several curves, with bootstrap intervals."""
    rows = []
    for name, cur in curves.items():
        for n, v in cur.items():
            m, lo, hi = bootstrap_ci(v, n_boot, seed=seed)
            rows.append({"method": name, "N": n, "acc": m, "low": lo, "high": hi})
    return rows
