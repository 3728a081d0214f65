"""Reference solutions to chapter 08's exercises (spoilers!). The test-suite checks that each passes its grader."""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ...rl import overoptimisation
from ...search import best_of_n


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


# ---------------------------------------------------------------- typical wrong answers (each must fail its grader)
def _needs_n(N: int) -> None:
    if N < 1:
        raise ValueError(f"N must be >= 1, got {N}")


def _kl_log_only(N):  # log N alone
    _needs_n(N)
    return math.log(N)


def _kl_log2(N):  # log2
    _needs_n(N)
    return math.log2(N) - (N - 1) / N


def _weights_float_binomials(n, N):  # factorials in float overflow for n = 200
    def f(k):
        return float(math.factorial(k)) if k < 171 else float("inf")

    total = f(n) / (f(N) * f(n - N))
    return torch.tensor([(f(i) / (f(N - 1) * f(i - N + 1)) if i >= N - 1 else 0.0) / total for i in range(n)])


def _fit_in_kl(kl, gain):  # fitting in KL instead of sqrt(KL)
    k = np.asarray(kl)
    (a, b), *_ = np.linalg.lstsq(np.stack([k, -k * k], 1), np.asarray(gain), rcond=None)
    return a, b


def _fit_with_intercept(kl, gain):  # with an intercept
    d = np.sqrt(np.asarray(kl))
    (c, a, b), *_ = np.linalg.lstsq(np.stack([np.ones_like(d), d, -d * d], 1), np.asarray(gain), rcond=None)
    return a, b


WRONG: dict[str, list[Callable[..., Any]]] = {
    "08.1": [
        _kl_log_only,
        _kl_log2,
        lambda N: math.log(max(N, 1)) - (max(N, 1) - 1) / max(N, 1),  # no check of N
    ],
    # with replacement; uniform; the top sample always; factorials in float overflow for n = 200
    "08.2": [
        lambda n, N: torch.tensor([((i + 1) / n) ** N - (i / n) ** N for i in range(n)]),
        lambda n, N: torch.full((n,), 1 / n),
        lambda n, N: torch.nn.functional.one_hot(torch.tensor(n - 1), n).double(),
        _weights_float_binomials,
    ],
    "08.3": [
        _fit_in_kl,
        _fit_with_intercept,
        lambda kl, g: (fit_bon(kl, g)[0], -fit_bon(kl, g)[1]),  # the sign of beta flipped
    ],
}



#: the course library's own versions, which pass the graders too
ALSO_RIGHT: dict[str, list[Callable[..., Any]]] = {"08.2": [best_of_n.best_of_n_weights], "08.3": [overoptimisation.fit_bon]}
