"""Reference solutions to chapter 06's exercises (spoilers!). The test-suite checks that each passes its grader."""
from __future__ import annotations

import math
from collections import defaultdict
from math import comb
from typing import Any, Callable, Sequence


def geometric_mean(step_probs: Sequence[float]) -> float:
    """06.1: ``(prod_i p_i)^(1/n)`` via the mean log; no steps -> 0; any zero step -> 0."""
    if not len(step_probs) or min(step_probs) <= 0.0:
        return 0.0
    return math.exp(sum(math.log(p) for p in step_probs) / len(step_probs))


def expected_best_of_n(scores: Sequence[float], correct: Sequence[float], n: int) -> float:
    """06.2: the mean over all ``n``-subsets of the pool of the top-scored sample's correctness.

    Sort by score, best first: the sample of rank ``j`` (0-based) is the best of a subset iff the subset holds it
    and ``n - 1`` of the ``M - 1 - j`` samples ranked below it, so it is picked with probability
    ``C(M - 1 - j, n - 1) / C(M, n)``.
    """
    M = len(scores)
    if not 1 <= n <= M:
        raise ValueError(f"need 1 <= n <= {M}, got {n}")
    order = sorted(range(M), key=lambda i: -scores[i])
    return sum(correct[i] * comb(M - 1 - j, n - 1) for j, i in enumerate(order)) / comb(M, n)


def weighted_vote(answers: Sequence[str | None], scores: Sequence[float]) -> str | None:
    """06.3: sum the scores per answer (whitespace removed; ``None`` does not vote); the heaviest answer wins."""
    weight: dict[str, float] = defaultdict(float)
    for a, s in zip(answers, scores):
        if a is not None and "".join(a.split()):
            weight["".join(a.split())] += float(s)
    return max(weight, key=weight.get) if weight else None  # type: ignore[arg-type]


# ---------------------------------------------------------------- typical wrong answers (each must fail its grader)
def _bon_top_scored(s, c, n):  # the top-scored sample's correctness
    return c[max(range(len(s)), key=lambda i: s[i])]


def _bon_pass_at_n(s, c, n):  # pass@n (any correct)
    from ...lm.evaluation import pass_at_k

    return pass_at_k(len(c), int(sum(c)), n)


def _bon_with_replacement(s, c, n):  # drawing with replacement
    order = sorted(range(len(s)), key=lambda i: -s[i])
    M = len(s)
    return sum(c[i] * (((M - j) / M) ** n - ((M - j - 1) / M) ** n) for j, i in enumerate(order))


def _vote_plain_majority(a, s):  # the plain majority
    from collections import Counter

    return Counter(x for x in a if x).most_common(1)[0][0] if any(a) else None


def _vote_none_counts(a, s):  # None counted as an answer
    w: defaultdict = defaultdict(float)
    for x, y in zip(a, s):
        w[x] += y
    return max(w, key=w.get)


WRONG: dict[str, list[Callable[..., Any]]] = {
    # the plain product; the arithmetic mean; no guard for empty or zero steps
    "06.1": [
        lambda v: math.prod(v) if v else 0.0,
        lambda v: sum(v) / len(v) if v else 0.0,
        lambda v: math.exp(sum(math.log(p) for p in v) / len(v)),
    ],
    "06.2": [
        _bon_top_scored,
        _bon_pass_at_n,
        _bon_with_replacement,
        lambda s, c, n: expected_best_of_n(s, c, min(max(n, 1), len(s))),  # no range check
    ],
    "06.3": [
        _vote_plain_majority,
        lambda a, s: a[max(range(len(a)), key=lambda i: s[i])],  # the top-scored sample's answer
        _vote_none_counts,
    ],
}
