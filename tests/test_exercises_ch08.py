"""Chapter 08's exercises: the reference solutions pass their graders, typical wrong answers and the stub fail."""
import math

import numpy as np
import pytest
import torch

from utils.exercises import grade
from utils.exercises.solutions import ch08


def _stub(*args):
    raise NotImplementedError  # the notebook's untouched exercise cell


def test_reference_solutions_pass():
    assert grade("08.1", ch08.bon_kl, verbose=False)
    assert grade("08.2", ch08.best_of_n_weights, verbose=False)
    assert grade("08.3", ch08.fit_bon, verbose=False)


@pytest.mark.parametrize("exercise", ["08.1", "08.2", "08.3"])
def test_the_untouched_stub_fails(exercise, capsys):
    assert not grade(exercise, _stub)
    assert "not implemented yet" in capsys.readouterr().out


def test_the_library_versions_pass_too():
    from utils.rl import overoptimisation as oo

    assert grade("08.2", oo.best_of_n_weights, verbose=False)
    assert grade("08.3", oo.fit_bon, verbose=False)


def test_typical_wrong_answers_fail():
    # 08.1: log N alone; log2; no check of N
    assert not grade("08.1", lambda N: math.log(N) if N >= 1 else (_ for _ in ()).throw(ValueError()), verbose=False)
    assert not grade("08.1", lambda N: math.log2(N) - (N - 1) / N if N >= 1 else (_ for _ in ()).throw(ValueError()), verbose=False)
    assert not grade("08.1", lambda N: math.log(max(N, 1)) - (max(N, 1) - 1) / max(N, 1), verbose=False)
    # 08.2: with replacement; uniform; the top sample always; factorials in float overflow for n = 200
    assert not grade("08.2", lambda n, N: torch.tensor([((i + 1) / n) ** N - (i / n) ** N for i in range(n)]), verbose=False)
    assert not grade("08.2", lambda n, N: torch.full((n,), 1 / n), verbose=False)
    assert not grade("08.2", lambda n, N: torch.nn.functional.one_hot(torch.tensor(n - 1), n).double(), verbose=False)

    def float_binomials(n, N):
        f = lambda k: float(math.factorial(k)) if k < 171 else float("inf")  # noqa: E731
        total = f(n) / (f(N) * f(n - N))
        return torch.tensor([(f(i) / (f(N - 1) * f(i - N + 1)) if i >= N - 1 else 0.0) / total for i in range(n)])
    assert not grade("08.2", float_binomials, verbose=False)
    # 08.3: fitting in KL instead of sqrt(KL); with an intercept; the sign of beta flipped
    def in_kl(kl, gain):
        k = np.asarray(kl)
        (a, b), *_ = np.linalg.lstsq(np.stack([k, -k * k], 1), np.asarray(gain), rcond=None)
        return a, b

    def with_intercept(kl, gain):
        d = np.sqrt(np.asarray(kl))
        (c, a, b), *_ = np.linalg.lstsq(np.stack([np.ones_like(d), d, -d * d], 1), np.asarray(gain), rcond=None)
        return a, b
    assert not grade("08.3", in_kl, verbose=False)
    assert not grade("08.3", with_intercept, verbose=False)
    assert not grade("08.3", lambda kl, g: (ch08.fit_bon(kl, g)[0], -ch08.fit_bon(kl, g)[1]), verbose=False)
