"""Countdown: combine all k one-digit numbers with + - * / to reach a target, one operation per step.

Rules of the world: every step combines two available values into a positive integer (division must
be exact); every number is used exactly once; the last value equals the target. Generated problems
keep intermediate values <= ``MAX_VALUE`` and targets in ``[MIN_TARGET, MAX_VALUE]``.

A worked solution and its answer look like::

    prompt:  use 3 5 7 to make 26
    steps:   7*3=21,21+5=26
    answer:  (7*3)+5

The exact solver gives every step two labels for free (exact *process* rewards, survey §3.1.4):
``valid`` (correct arithmetic on available values) and ``reachable`` (target still reachable after it).
"""
from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import replace
from fractions import Fraction
from functools import lru_cache
from itertools import permutations

from .core import MAX_STEPS, Family, Problem, StepLabel, split_steps

MAX_DIGIT = 9
MAX_VALUE = 50
MIN_TARGET = 10
LEVELS = (2, 3, 4, 5)
OPS = "+-*/"


def apply_op(a: int, op: str, b: int) -> int | None:
    """``a op b`` if it is a positive integer under the world's rules, else ``None``."""
    if op == "+":
        r = a + b
    elif op == "-":
        r = a - b
    elif op == "*":
        r = a * b
    elif op == "/":
        if b == 0 or a % b:
            return None
        r = a // b
    else:
        return None
    return r if r > 0 else None


def _wrap(expr: str) -> str:
    """Parenthesise a sub-expression unless it is a single number."""
    return expr if expr.isdigit() else f"({expr})"


def generate(rng: random.Random, level: int) -> Problem:
    """A random solvable problem with ``level`` numbers, with the generating path as reference solution."""
    if level not in LEVELS:
        raise ValueError(f"countdown levels are {LEVELS}, got {level}")
    while True:
        numbers = [rng.randint(1, MAX_DIGIT) for _ in range(level)]
        pool = [(n, str(n)) for n in numbers]  # (value, expression)
        steps: list[str] = []
        ok = True
        while len(pool) > 1:
            i, j = rng.sample(range(len(pool)), 2)
            (a, ea), (b, eb) = pool[i], pool[j]
            options = []
            for op in OPS:
                x, y, ex, ey = (a, b, ea, eb)
                if op in "-/" and a < b:
                    x, y, ex, ey = (b, a, eb, ea)
                r = apply_op(x, op, y)
                if r is not None and r <= MAX_VALUE and not (op in "*/" and y == 1 and rng.random() < 0.8):
                    options.append((op, x, y, ex, ey, r))
            if not options:
                ok = False
                break
            op, x, y, ex, ey, r = rng.choice(options)
            if op in "+*" and x < y:
                x, y, ex, ey = y, x, ey, ex
            steps.append(f"{x}{op}{y}={r}")
            pool = [p for k, p in enumerate(pool) if k not in (i, j)] + [(r, f"{_wrap(ex)}{op}{_wrap(ey)}")]
        if not ok:
            continue
        target, expr = pool[0]
        if MIN_TARGET <= target <= MAX_VALUE:
            return make_problem(numbers, target, steps, expr)


def make_problem(numbers: list[int], target: int, steps: list[str] | None = None, expr: str | None = None) -> Problem:
    """Build a Countdown :class:`Problem`; without a reference solution the exact solver supplies one.

    Raises ``ValueError`` if the puzzle has no solution.
    """
    if steps is None or expr is None:
        sol = solve(numbers, target)
        if sol is None:
            raise ValueError(f"no solution for {numbers} -> {target}")
        steps, expr = sol
    key = ",".join(map(str, sorted(numbers))) + f"->{target}"
    return Problem(
        family="countdown",
        prompt=f"use {' '.join(map(str, numbers))} to make {target}",
        answer=expr,
        steps=tuple(steps),
        level=len(numbers),
        meta={"numbers": tuple(numbers), "target": target, "key": key},
    )


# ----------------------------------------------------------------------------------------------
# Exact solver
# ----------------------------------------------------------------------------------------------


@lru_cache(maxsize=200_000)
def _solvable(pool: tuple[int, ...], target: int) -> bool:
    if len(pool) == 1:
        return pool[0] == target
    n = len(pool)
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            rest = tuple(pool[k] for k in range(n) if k not in (i, j))
            for op in OPS:
                if op in "+*" and i > j:
                    continue  # commutative: try each pair once
                r = apply_op(pool[i], op, pool[j])
                if r is not None and _solvable(tuple(sorted(rest + (r,))), target):
                    return True
    return False


def solvable(pool: list[int] | tuple[int, ...], target: int) -> bool:
    """Can the values in ``pool`` (all of them) reach ``target`` by valid steps?"""
    if not pool or len(pool) > 7:
        return False
    return _solvable(tuple(sorted(int(v) for v in pool)), int(target))


def solve(numbers: list[int] | tuple[int, ...], target: int) -> tuple[list[str], str] | None:
    """One solution ``(steps, expression)`` or ``None`` (exhaustive search with memoised pruning)."""
    pool = [(int(v), str(v)) for v in numbers]

    def rec(pool: list[tuple[int, str]]) -> tuple[list[str], str] | None:
        if len(pool) == 1:
            return ([], pool[0][1]) if pool[0][0] == target else None
        if not solvable([v for v, _ in pool], target):
            return None
        for i in range(len(pool)):
            for j in range(len(pool)):
                if i == j:
                    continue
                (a, ea), (b, eb) = pool[i], pool[j]
                for op in OPS:
                    if op in "+*" and a < b:
                        continue
                    r = apply_op(a, op, b)
                    if r is None:
                        continue
                    rest = [p for k, p in enumerate(pool) if k not in (i, j)] + [(r, f"{_wrap(ea)}{op}{_wrap(eb)}")]
                    sub = rec(rest)
                    if sub is not None:
                        return [f"{a}{op}{b}={r}"] + sub[0], sub[1]
        return None

    return rec(pool) if pool else None


# ----------------------------------------------------------------------------------------------
# Verifiers (accept any string, never raise)
# ----------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(\d+|[-+*/()x×÷])")


def evaluate_expression(expr: str) -> tuple[Fraction, list[int]] | None:
    """Exactly evaluate an arithmetic expression; return ``(value, leaf numbers)`` or ``None``.

    Grammar: ``expr := term (('+'|'-') term)*``, ``term := atom (('*'|'/') atom)*``,
    ``atom := integer | '(' expr ')'``. ``x``/``×`` and ``÷`` are accepted for * and /.
    No ``eval``: anything else (letters, unbalanced parentheses, division by zero) gives ``None``.
    """
    if not isinstance(expr, str) or len(expr) > 200:
        return None
    s = expr.strip().rstrip("=").strip()
    tokens: list[str] = []
    pos = 0
    while pos < len(s):
        m = _TOKEN.match(s, pos)
        if not m:
            return None
        tokens.append({"x": "*", "×": "*", "÷": "/"}.get(m.group(1), m.group(1)))
        pos = m.end()
        while pos < len(s) and s[pos].isspace():
            pos += 1
    leaves: list[int] = []
    idx = 0

    def peek() -> str | None:
        return tokens[idx] if idx < len(tokens) else None

    def atom() -> Fraction:
        nonlocal idx
        t = peek()
        if t is None:
            raise ValueError
        if t == "(":
            idx += 1
            v = expr_()
            if peek() != ")":
                raise ValueError
            idx += 1
            return v
        if t.isdigit():
            idx += 1
            leaves.append(int(t))
            return Fraction(int(t))
        raise ValueError

    def term() -> Fraction:
        nonlocal idx
        v = atom()
        while peek() in ("*", "/"):
            op = tokens[idx]
            idx += 1
            w = atom()
            if op == "/":
                if w == 0:
                    raise ValueError
                v = v / w
            else:
                v = v * w
        return v

    def expr_() -> Fraction:
        nonlocal idx
        v = term()
        while peek() in ("+", "-"):
            op = tokens[idx]
            idx += 1
            w = term()
            v = v + w if op == "+" else v - w
        return v

    try:
        value = expr_()
    except (ValueError, RecursionError):
        return None
    if idx != len(tokens) or not tokens:
        return None
    return value, leaves


def verify_answer(problem: Problem, answer: str) -> float:
    """1.0 if ``answer`` is an expression using exactly the problem's numbers that equals the target."""
    res = evaluate_expression(answer)
    if res is None:
        return 0.0
    value, leaves = res
    ok = Counter(leaves) == Counter(problem.meta["numbers"]) and value == problem.meta["target"]
    return 1.0 if ok else 0.0


_STEP = re.compile(r"^\s*(\d{1,4})\s*([-+*/x×÷])\s*(\d{1,4})\s*=\s*(\d{1,6})\s*$")


def step_labels(problem: Problem, think: str | None) -> list[StepLabel]:
    """Label each step of a think block. After the first invalid step every later step is invalid.

    Never raises; an empty or unparsable think block gives ``[]``.
    """
    pool = Counter(problem.meta["numbers"])
    target = problem.meta["target"]
    labels: list[StepLabel] = []
    broken = False
    for text in split_steps(think)[:MAX_STEPS]:
        m = _STEP.match(text)
        if broken or not m:
            broken = True
            labels.append(StepLabel(text, False, False))
            continue
        a, op, b, c = int(m.group(1)), {"x": "*", "×": "*", "÷": "/"}.get(m.group(2), m.group(2)), int(m.group(3)), int(m.group(4))
        need = Counter([a, b])
        if any(pool[v] < k for v, k in need.items()) or apply_op(a, op, b) != c:
            broken = True
            labels.append(StepLabel(text, False, False))
            continue
        pool -= need
        pool[c] += 1
        labels.append(StepLabel(text, True, solvable(list(pool.elements()), target)))
    return labels


def reorder(problem: Problem, k: int) -> list[Problem]:
    """Up to ``k`` statements of ``problem`` with its numbers in distinct orders: the original first, then the
    other distinct permutations in :func:`itertools.permutations` order of positions (deterministic).

    A problem is a multiset of numbers, so every ordering keeps the uid, split, target and reference solution;
    repeated numbers give fewer distinct orderings (``3 3 5``: 3).
    """
    numbers = tuple(problem.meta["numbers"])
    seen: dict[tuple[int, ...], None] = {}
    for idx in permutations(range(len(numbers))):
        seen.setdefault(tuple(numbers[i] for i in idx), None)
        if len(seen) >= k:
            break
    out = []
    for perm in seen:
        q = make_problem(list(perm), problem.meta["target"], list(problem.steps), problem.answer)
        out.append(replace(q, meta={**problem.meta, **q.meta}))
    return out


FAMILY = Family("countdown", generate, verify_answer, LEVELS, step_labels, reachability=True, reorder=reorder)
