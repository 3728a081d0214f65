"""Reference solutions to chapter 00's exercises (spoilers!). The test-suite checks that each passes its grader."""
from __future__ import annotations

from math import comb
from typing import Any, Callable

import numpy as np

from ...lm.evaluation import majority_correct
from ...world import Problem, parse_completion, score


def pass_at_k(n: int, c: int, k: int) -> float:
    """00.1: ``1 - C(n-c, k) / C(n, k)``, exact with Python integers."""
    return 1.0 if n - c < k else 1.0 - comb(n - c, k) / comb(n, k)


def half_credit_reward(problem: Problem, completion: Any) -> float:
    """00.2: 1.0 correct, 0.5 well-formed but wrong, else 0.0; never raises."""
    if not isinstance(completion, str):
        return 0.0
    if not parse_completion(completion).well_formed:
        return 0.0
    return 1.0 if score(problem, completion) == 1.0 else 0.5


def pass_at_k_with_se(correct: Any, k: int) -> tuple[float, float]:
    """00.3: the mean of the per-problem unbiased pass@k estimates and its standard error over problems,
    ``std(ddof=1) / sqrt(P)``: the problems are the independent units, not the ``P * n`` samples."""
    import numpy as np

    a = np.asarray(correct)
    n = a.shape[1]
    per = np.array([pass_at_k(n, int(c), k) for c in a.sum(axis=1)])
    return float(per.mean()), float(per.std(ddof=1) / np.sqrt(len(per)))


def majority_vote_random_ties(answers: list, correct: list) -> float:
    """00.4: the probability that majority voting is right when ties are broken uniformly at random.

    Answers are compared without whitespace; ``None`` and blank answers abstain; no vote at all scores 0.
    """
    from collections import Counter

    keys = [None if a is None else "".join(str(a).split()) or None for a in answers]
    votes = Counter(k for k in keys if k is not None)
    if not votes:
        return 0.0
    best = max(votes.values())
    winners = [k for k, v in votes.items() if v == best]
    right = {k for k, c in zip(keys, correct) if k is not None and c}
    return sum(w in right for w in winners) / len(winners)


# ---------------------------------------------------------------- typical wrong answers (each must fail its grader)
def _per_problem(correct: np.ndarray, k: int) -> np.ndarray:
    n = correct.shape[1]
    return np.array([1 - comb(n - int(c), k) / comb(n, k) for c in correct.sum(1)])


def _se_ddof0(correct: Any, k: int) -> tuple[float, float]:  # the population std
    per = _per_problem(np.asarray(correct), k)
    return per.mean(), per.std() / np.sqrt(len(per))


def _se_pooled(correct: Any, k: int) -> tuple[float, float]:  # every sample treated as an independent Bernoulli draw
    a = np.asarray(correct)
    m = _per_problem(a, k).mean()
    return m, np.sqrt(m * (1 - m) / a.size)


def _se_no_sqrt(correct: Any, k: int) -> tuple[float, float]:  # the variance of the mean's numerator, not its standard error
    per = _per_problem(np.asarray(correct), k)
    return per.mean(), per.std(ddof=1) / len(per)


def _se_plugin(correct: Any, k: int) -> tuple[float, float]:  # right error bar, biased estimator
    a = np.asarray(correct)
    per = 1 - (1 - a.mean(1)) ** k
    return per.mean(), per.std(ddof=1) / np.sqrt(len(per))


def _vote_abstentions(answers: list, correct: list) -> float:  # None counts as an answer
    return majority_vote_random_ties(["None" if a is None else a for a in answers], correct)


def _vote_no_normalisation(answers: list, correct: list) -> float:  # " 7" and "7 " split their votes
    from collections import Counter

    votes = Counter(a for a in answers if a is not None and a.strip())
    if not votes:
        return 0.0
    best = max(votes.values())
    winners = [a for a, v in votes.items() if v == best]
    right = {a for a, c in zip(answers, correct) if c}
    return sum(w in right for w in winners) / len(winners)


WRONG: dict[str, list[Callable[..., Any]]] = {
    "00.1": [
        lambda n, c, k: c / n,  # "fraction correct", whatever k
        lambda n, c, k: 1 - (1 - c / n) ** k,  # the biased plug-in estimator
        lambda n, c, k: min(1.0, k * c / n),  # a union bound
    ],
    "00.2": [
        lambda p, t: 1.0 if "<answer>" in t else 0.0,  # crashes on None
        lambda p, t: score(p, t),  # no half credit
        # half credit for any answer block, well-formed or not
        lambda p, t: 0.0 if parse_completion(t).answer is None else (1.0 if score(p, t) else 0.5),
    ],
    "00.3": [_se_ddof0, _se_pooled, _se_no_sqrt, _se_plugin],
    "00.4": [
        majority_correct,  # the library's first-seen tie-break
        lambda a, c: float(np.mean(c)),  # the fraction correct
        _vote_abstentions,
        _vote_no_normalisation,
    ],
}
