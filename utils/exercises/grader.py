"""A tiny grader for the notebooks' exercises.

In a notebook::

    def my_pass_at_k(n, c, k):
        ...  # your code
    grade("00.1", my_pass_at_k)

``grade`` runs the exercise's tests (:data:`utils.exercises.EXERCISES`, found in one module per chapter), prints one line per test with
what failed, and returns ``True`` when all pass. It never raises on a wrong answer, so a notebook with
an unfinished exercise still runs top to bottom; pass ``strict=True`` to raise instead.
"""
from __future__ import annotations

import traceback
from typing import Any, Callable, NamedTuple


class Exercise(NamedTuple):
    """One graded exercise: what it asks for, the tests its grader runs, and the name of its reference solution in
    ``utils.exercises.solutions.chNN`` (a name, not the function: the graders never import the spoilers)."""

    title: str
    tests: list[Callable[[Callable[..., Any]], None]]
    solution: str


def grade(exercise_id: str, fn: Callable[..., Any], strict: bool = False, verbose: bool = True) -> bool:
    """Run the tests of ``exercise_id`` against ``fn``; print a report; return whether all passed."""
    from . import EXERCISES

    if exercise_id not in EXERCISES:
        raise KeyError(f"unknown exercise {exercise_id!r}; known: {sorted(EXERCISES)}")
    title, tests, _ = EXERCISES[exercise_id]
    failures = []
    for test in tests:
        name = (test.__doc__ or test.__name__).strip().splitlines()[0]
        try:
            test(fn)
        except NotImplementedError:
            failures.append((name, "not implemented yet"))
        except AssertionError as e:
            failures.append((name, str(e) or "assertion failed"))
        except Exception as e:  # the student's code crashed
            tb = traceback.format_exception_only(type(e), e)[-1].strip()
            failures.append((name, f"raised {tb}"))
    if verbose:
        print(f"Exercise {exercise_id}: {title}")
        failed = {n for n, _ in failures}
        for test in tests:
            name = (test.__doc__ or test.__name__).strip().splitlines()[0]
            print(f"  {'✗' if name in failed else '✓'} {name}")
        for name, why in failures:
            print(f"    - {name}: {why}")
        print(f"  {len(tests) - len(failures)}/{len(tests)} tests passed")
    if failures and strict:
        raise AssertionError(f"exercise {exercise_id}: {len(failures)} test(s) failed")
    return not failures
