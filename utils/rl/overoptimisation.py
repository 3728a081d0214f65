"""Reward over-optimisation (survey §3.1.5, §3.2.2; Gao et al. 2022, arXiv 2210.10760).

Optimise a learned **proxy** reward and watch the **gold** (true) reward as the policy moves away from the
reference, measured by ``KL(pi || pi_ref)``:

* :func:`bon_kl` - the exact KL of best-of-N sampling, ``log N - (N - 1) / N`` (for a continuous proxy).
* :func:`best_of_n_weights` / :func:`best_of_n_curve` - the *exact* expectation, over every size-``N`` subset
  of ``n`` stored samples, of the proxy and the gold reward of the sample the proxy picks. Sampling once
  (``n`` per prompt) gives the whole curve ``N = 1 ... n`` without re-sampling and without subset noise.
* :func:`fit_bon` / :func:`fit_rl` - least-squares fits of Gao et al.'s functional forms,
  ``R_bon(d) = d (alpha - beta d)`` and ``R_rl(d) = d (alpha - beta log d)`` with ``d = sqrt(KL)``, to the
  gold reward's gain over ``N = 1`` (or over the start of RL).
* :func:`paired_bootstrap` - a percentile interval for the mean of per-prompt differences.

Imports torch, numpy and :mod:`.policy_gradient`.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from .policy_gradient import percentile_interval


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


def _fit(d: np.ndarray, gain: np.ndarray, second: np.ndarray) -> tuple[float, float]:
    A = np.stack([d, -second], 1)
    (alpha, beta), *_ = np.linalg.lstsq(A, gain, rcond=None)
    return float(alpha), float(beta)


def fit_bon(kl: Sequence[float], gain: Sequence[float]) -> tuple[float, float]:
    """``(alpha, beta)`` of ``gain = d (alpha - beta d)``, ``d = sqrt(kl)``, by least squares (Gao et al.'s BoN form).

    ``gain`` is the gold reward minus its value at ``kl = 0``. The fitted peak is at ``d* = alpha / (2 beta)``
    (when ``beta > 0``)."""
    d, g = _check(kl, gain)
    return _fit(d, g, d**2)


def fit_rl(kl: Sequence[float], gain: Sequence[float]) -> tuple[float, float]:
    """``(alpha, beta)`` of ``gain = d (alpha - beta log d)``, ``d = sqrt(kl)`` (Gao et al.'s RL form); points
    with ``kl = 0`` are used (``d log d -> 0``)."""
    d, g = _check(kl, gain)
    dlogd = np.where(d > 0, d * np.log(np.where(d > 0, d, 1.0)), 0.0)
    return _fit(d, g, dlogd)


def _check(kl: Sequence[float], gain: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    kl_a, g = np.asarray(kl, dtype=np.float64), np.asarray(gain, dtype=np.float64)
    if kl_a.shape != g.shape or kl_a.ndim != 1 or len(kl_a) < 2:
        raise ValueError(f"need two 1-d sequences of equal length >= 2, got shapes {kl_a.shape} and {g.shape}")
    if (kl_a < 0).any():
        raise ValueError("a KL divergence cannot be negative")
    return np.sqrt(kl_a), g


def bon_form(kl: Sequence[float] | np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """``d (alpha - beta d)`` at ``d = sqrt(kl)`` (to draw a :func:`fit_bon` curve)."""
    d = np.sqrt(np.asarray(kl, dtype=np.float64))
    return d * (alpha - beta * d)


def rl_form(kl: Sequence[float] | np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """``d (alpha - beta log d)`` at ``d = sqrt(kl)`` (to draw a :func:`fit_rl` curve)."""
    d = np.sqrt(np.asarray(kl, dtype=np.float64))
    return np.where(d > 0, d * (alpha - beta * np.log(np.where(d > 0, d, 1.0))), 0.0)


def paired_bootstrap(diff: torch.Tensor | np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0
                     ) -> tuple[float, float, float]:
    """``(mean, lo, hi)``: the mean of ``[M]`` per-prompt differences and its percentile bootstrap interval
    (resampling prompts; :func:`utils.rl.policy_gradient.percentile_interval`)."""
    x = torch.as_tensor(np.asarray(diff, dtype=np.float64)).reshape(-1)
    if x.numel() == 0:
        raise ValueError("paired_bootstrap needs at least one difference")
    idx = torch.randint(0, x.numel(), (n_boot, x.numel()), generator=torch.Generator().manual_seed(seed))
    lo, hi = percentile_interval(x[idx].mean(1), level)
    return float(x.mean()), lo, hi
