"""Reference solutions to chapter 00's exercises (spoilers!). The test-suite checks that each passes its grader."""
from __future__ import annotations

from math import comb
from typing import Any

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
