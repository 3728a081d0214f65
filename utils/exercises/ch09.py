"""Graders of chapter 09's exercises: each test takes the student's function and raises ``AssertionError``
with a helpful message on failure (see :func:`utils.exercises.grade`)."""
from __future__ import annotations

import math
from typing import Any, Callable

from .grader import Exercise

Test = Callable[[Callable[..., Any]], None]


def _t(x: Any) -> Any:
    import torch

    return torch.as_tensor(x, dtype=torch.float64)


def _vec(out: Any, n: int, what: str) -> list[float]:
    import torch

    t = torch.as_tensor(out, dtype=torch.float64).reshape(-1)
    assert t.numel() == n, f"return one {what} per pair ([{n}]), got {t.numel()} values - no .mean() over the batch"
    return t.tolist()


# ---------------------------------------------------------------- 09.1: the DPO loss
_W, _L, _RW, _RL = [-12.0, -30.0, -8.0, -20.0], [-15.0, -25.0, -9.0, -40.0], [-13.0, -28.0, -8.5, -22.0], [-14.0, -26.0, -8.0, -35.0]


def _dpo_want(beta: float) -> list[float]:
    return [-math.log(1 / (1 + math.exp(-beta * ((w - rw) - (l - rl))))) for w, l, rw, rl in zip(_W, _L, _RW, _RL)]


def _t_dpo_values(fn: Callable) -> None:
    """-log sigmoid(beta * (chosen log-ratio - rejected log-ratio)) per pair, for beta = 0.1 and 0.5"""
    for beta in [0.1, 0.5]:
        got = _vec(fn(_t(_W), _t(_L), _t(_RW), _t(_RL), beta), 4, "loss")
        want = _dpo_want(beta)
        hint = ""
        sig = [1 / (1 + math.exp(-beta * ((w - rw) - (l - rl)))) for w, l, rw, rl in zip(_W, _L, _RW, _RL)]
        if all(abs(g - s) < 1e-6 for g, s in zip(got, sig)):
            hint = " - that is the survey's printed form sigma(...): the loss is -log sigma(...)"
        elif all(abs(g - w) < 1e-6 for g, w in zip(got, _dpo_want(1.0))):
            hint = " - beta is missing: it scales the log-ratio difference inside the sigmoid"
        elif all(abs(g + math.log(1 - math.exp(-w))) < 1e-6 for g, w in zip(got, want)):
            hint = " - chosen and rejected are swapped"
        assert all(abs(g - w) < 1e-6 for g, w in zip(got, want)), f"beta={beta}: expected {[round(w, 4) for w in want]}, got {[round(g, 4) for g in got]}{hint}"


def _t_dpo_reference(fn: Callable) -> None:
    """at the reference (policy = reference) every pair's loss is log 2, whatever the data"""
    got = _vec(fn(_t(_W), _t(_L), _t(_W), _t(_L), 0.3), 4, "loss")
    assert all(abs(g - math.log(2)) < 1e-6 for g in got), f"expected log 2 = {math.log(2):.4f} for every pair, got {got}"


def _t_dpo_ratio_not_logps(fn: Callable) -> None:
    """the reference enters through the log-ratios: shifting a response's policy and reference log-probs together changes nothing"""
    a = _vec(fn(_t(_W), _t(_L), _t(_RW), _t(_RL), 0.1), 4, "loss")
    shift = [5.0, -3.0, 2.0, 7.0]
    b = _vec(fn(_t([w + s for w, s in zip(_W, shift)]), _t(_L), _t([r + s for r, s in zip(_RW, shift)]), _t(_RL), 0.1), 4, "loss")
    assert all(abs(x - y) < 1e-6 for x, y in zip(a, b)), "the loss must depend on log pi - log pi_ref only (the implicit reward)"


# ---------------------------------------------------------------- 09.2: ORPO
def _log_odds(m: float) -> float:
    return m - math.log(-math.expm1(m))


def _orpo_want(nll: list[float], mw: list[float], ml: list[float], lam: float) -> list[float]:
    return [n - lam * math.log(1 / (1 + math.exp(-(_log_odds(a) - _log_odds(b))))) for n, a, b in zip(nll, mw, ml)]


_NLL, _MW, _ML = [0.4, 1.2, 0.9], [-0.4, -1.2, -0.9], [-0.7, -1.0, -2.5]


def _t_orpo_values(fn: Callable) -> None:
    """NLL(y_w) - lam * log sigmoid(log odds(y_w) - log odds(y_l)), odds = p / (1 - p), p = exp(mean log-prob)"""
    for lam in [0.1, 1.0]:
        got = _vec(fn(_t(_NLL), _t(_MW), _t(_ML), lam), 3, "loss")
        want = _orpo_want(_NLL, _MW, _ML, lam)
        hint = ""
        ratio = [n - lam * math.log(1 / (1 + math.exp(-(a - b)))) for n, a, b in zip(_NLL, _MW, _ML)]
        survey = [-(a - math.log(math.exp(a) + math.exp(b))) for a, b in zip(_MW, _ML)]
        if all(abs(g - r) < 1e-6 for g, r in zip(got, ratio)):
            hint = " - that compares log p, not the log odds log(p / (1 - p))"
        elif all(abs(g - s) < 1e-6 for g, s in zip(got, survey)):
            hint = " - that is the survey's formula -log p_w/(p_w + p_l): ORPO uses odds ratios and an NLL term"
        elif all(abs(g - (w - n)) < 1e-6 for g, w, n in zip(got, want, _NLL)):
            hint = " - the NLL of the chosen response is part of the loss"
        assert all(abs(g - w) < 1e-6 for g, w in zip(got, want)), f"lam={lam}: expected {[round(w, 4) for w in want]}, got {[round(g, 4) for g in got]}{hint}"


def _t_orpo_stable(fn: Callable) -> None:
    """stays finite when the mean log-probs are close to 0 (p -> 1) or very negative"""
    got = _vec(fn(_t([1e-9, 30.0]), _t([-1e-17, -30.0]), _t([-1e-7, -1e-18]), 0.5), 2, "loss")
    assert all(math.isfinite(g) for g in got), f"non-finite loss {got}: compute log(1 - p) as log(-expm1(m))"


# ---------------------------------------------------------------- 09.3: Plackett-Luce
def _pl(rows: list[list[float]]) -> float:
    tot = 0.0
    for r in rows:
        for k in range(len(r)):
            tot -= r[k] - math.log(sum(math.exp(x) for x in r[k:]))
    return tot / len(rows)


def _t_pl_values(fn: Callable) -> None:
    """the mean over rows of -sum_k [s_k - log sum_{j >= k} exp(s_j)], rows best first"""
    rows = [[2.0, 1.0, -0.5, 0.3], [0.1, 0.2, 0.3, 0.4], [3.0, -1.0, -2.0, 1.0]]
    got = float(fn(_t(rows)))
    want = _pl(rows)
    full = sum(-sum(x - math.log(sum(math.exp(y) for y in r)) for x in r) for r in rows) / len(rows)
    hint = " - the survey's denominator over all j: each factor must normalise over the items not yet ranked (j >= k)" if abs(got - full) < 1e-6 else ""
    if abs(got - want * len(rows)) < 1e-6:
        hint = " - average over the rows (the batch), do not sum"
    assert abs(got - want) < 1e-6, f"expected {want:.6f}, got {got:.6f}{hint}"


def _t_pl_two_is_bt(fn: Callable) -> None:
    """for K = 2 it is the Bradley-Terry loss -log sigmoid(s_1 - s_2), and it is a proper distribution over orderings"""
    import itertools

    got = float(fn(_t([[1.5, -0.5]])))
    want = -math.log(1 / (1 + math.exp(-2.0)))
    assert abs(got - want) < 1e-6, f"K = 2: expected -log sigmoid(2) = {want:.6f}, got {got:.6f}"
    s = [0.7, -0.2, 1.1]
    total = sum(math.exp(-float(fn(_t([[s[i] for i in perm]])))) for perm in itertools.permutations(range(3)))
    assert abs(total - 1) < 1e-6, f"the probabilities of the 6 orderings of 3 items must sum to 1, got {total:.6f}"


EXERCISES: dict[str, Exercise] = {
    "09.1": Exercise("the DPO loss", [_t_dpo_values, _t_dpo_reference, _t_dpo_ratio_not_logps], "dpo_loss"),
    "09.2": Exercise("ORPO as Hong et al. wrote it", [_t_orpo_values, _t_orpo_stable], "orpo_loss"),
    "09.3": Exercise("the Plackett-Luce likelihood of a ranking", [_t_pl_values, _t_pl_two_is_bt], "plackett_luce_nll"),
}
