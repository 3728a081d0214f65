"""Column addition: add two numbers column by column, right to left, carrying.

::

    prompt:  add 457+68
    steps:   7+8+0=15:5,5+6+1=12:25,4+0+1=5:525
    answer:  525

Each step is ``digit + digit + carry = column sum : digits of the result so far``; the running result
means the final answer is a copy of the last step rather than a reversal of all of them (reversing is
hard for a tiny transformer, copying is easy).

A second skill beside Countdown: the course uses it to measure forgetting (train on one family,
test the other) and length generalisation (train on up to 4 digits, test on 5).
"""
from __future__ import annotations

import random

from .core import MAX_STEPS, Family, Problem, StepLabel, split_steps

LEVELS = (1, 2, 3, 4, 5, 6)


def column_steps(a: int, b: int) -> list[str]:
    """The reference column steps ``"x+y+carry=sum:result so far"`` for ``a + b``, least significant first."""
    da, db = str(a)[::-1], str(b)[::-1]
    carry, steps, partial = 0, [], ""
    n = max(len(da), len(db))
    for i in range(n):
        x = int(da[i]) if i < len(da) else 0
        y = int(db[i]) if i < len(db) else 0
        s = x + y + carry
        partial = (str(s) if i == n - 1 else str(s % 10)) + partial
        steps.append(f"{x}+{y}+{carry}={s}:{partial}")
        carry = s // 10
    return steps


def make_problem(a: int, b: int) -> Problem:
    """Build the addition problem ``a + b`` (non-negative integers); its level is the longer length."""
    if a < 0 or b < 0:
        raise ValueError("addition problems use non-negative integers")
    return Problem(
        family="addition",
        prompt=f"add {a}+{b}",
        answer=str(a + b),
        steps=tuple(column_steps(a, b)),
        level=max(len(str(a)), len(str(b))),
        meta={"a": a, "b": b, "key": f"{a}+{b}"},
    )


def generate(rng: random.Random, level: int) -> Problem:
    """``a`` has exactly ``level`` digits, ``b`` between 1 and ``level`` digits, in random order."""
    if level not in LEVELS:
        raise ValueError(f"addition levels are {LEVELS}, got {level}")
    lo = 10 ** (level - 1) if level > 1 else 0
    a = rng.randint(lo, 10**level - 1)
    other = rng.randint(1, level)
    b = rng.randint(10 ** (other - 1) if other > 1 else 0, 10**other - 1)
    if rng.random() < 0.5:
        a, b = b, a
    return make_problem(a, b)


def verify_answer(problem: Problem, answer: str) -> float:
    """1.0 if ``answer`` is the sum written as a plain integer (spaces ignored)."""
    if not isinstance(answer, str):
        return 0.0
    s = answer.strip().replace(" ", "")
    if not s.isdigit() or len(s) > 20:
        return 0.0
    return 1.0 if int(s) == problem.meta["a"] + problem.meta["b"] else 0.0


def step_labels(problem: Problem, think: str | None) -> list[StepLabel]:
    """For each written step, whether it equals the reference column step at that position
    (``reachable`` is ``None``: a wrong column cannot be repaired later, there is no solver to ask)."""
    ref = column_steps(problem.meta["a"], problem.meta["b"])
    got = [s.replace(" ", "") for s in split_steps(think)][:MAX_STEPS]
    return [StepLabel(s, i < len(ref) and s == ref[i], None) for i, s in enumerate(got)]


FAMILY = Family("addition", generate, verify_answer, LEVELS, step_labels)
