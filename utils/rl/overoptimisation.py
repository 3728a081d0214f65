"""Reward over-optimisation (survey §3.1.5, §3.2.2; Gao et al. 2022, arXiv 2210.10760).

Optimise a learned **proxy** reward and watch the **gold** (true) reward as the policy moves away from the
reference, measured by ``KL(pi || pi_ref)``:

* best-of-N itself (its KL and the exact curve from one pool of samples) is in :mod:`utils.search.best_of_n`.
* :func:`fit_bon` / :func:`fit_rl` - least-squares fits of Gao et al.'s functional forms,
  ``R_bon(d) = d (alpha - beta d)`` and ``R_rl(d) = d (alpha - beta log d)`` with ``d = sqrt(KL)``, to the
  gold reward's gain over ``N = 1`` (or over the start of RL); :func:`gold_gain_bon` draws the fitted BoN curve.

Imports numpy only; intervals over prompts come from :func:`utils.stats.paired_bootstrap`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


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


def gold_gain_bon(kl: Sequence[float] | np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """``d (alpha - beta d)`` at ``d = sqrt(kl)`` (to draw a :func:`fit_bon` curve)."""
    d = np.sqrt(np.asarray(kl, dtype=np.float64))
    return d * (alpha - beta * d)
