"""Reference solutions to chapter 08's exercises (spoilers!). The test-suite checks that each passes its grader."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch


def bon_kl(N: int) -> float:
    """08.1: ``KL(pi_bon || pi_ref) = log N - (N - 1) / N`` nats; ``ValueError`` for ``N < 1``."""
    if N < 1:
        raise ValueError(f"best-of-N needs N >= 1, got {N}")
    return math.log(N) - (N - 1) / N


def best_of_n_weights(n: int, N: int) -> torch.Tensor:
    """08.2: ``[n]`` with entry ``i`` = ``C(i, N-1) / C(n, N)``: rank ``i`` (ascending) wins a random ``N``-subset
    when the other ``N - 1`` members all rank below it. Exact integers, then one division (no overflow)."""
    total = math.comb(n, N)
    return torch.tensor([math.comb(i, N - 1) / total for i in range(n)], dtype=torch.float64)


def fit_bon(kl: Sequence[float], gain: Sequence[float]) -> tuple[float, float]:
    """08.3: least squares of ``gain = alpha d - beta d^2``, ``d = sqrt(kl)``, no intercept."""
    d = np.sqrt(np.asarray(kl, dtype=np.float64))
    (alpha, beta), *_ = np.linalg.lstsq(np.stack([d, -d * d], 1), np.asarray(gain, dtype=np.float64), rcond=None)
    return float(alpha), float(beta)
