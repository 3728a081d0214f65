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
