"""Exercises: one module of graders per chapter, ``chNN.py`` (found here by name: every module ``ch`` + two digits),
and, apart, their reference solutions (:mod:`utils.exercises.solutions`, spoilers: only the solutions notebooks in
`notebooks/solutions/` and the tests import them).

In a notebook: ``from utils.exercises import grade`` then ``grade("01.3", my_leave_one_out)``.

A chapter ``NN`` adds ``chNN.py`` with ``EXERCISES = {"NN.k": Exercise(title, tests, "solution_name")}`` and
``solutions/chNN.py`` with the function ``solution_name`` and ``WRONG = {"NN.k": [typical wrong answers]}``
(optionally ``ALSO_RIGHT``, other functions that must pass); ``tests/test_exercises.py`` picks up both.
"""
from __future__ import annotations

import importlib
import pkgutil
import re
from types import ModuleType

from .grader import Exercise, grade

CHAPTER = re.compile(r"ch\d\d")


def chapter_modules(package: str = __name__) -> dict[str, ModuleType]:
    """``{"00": <module ...ch00>, ...}``: every module of ``package`` named ``ch`` + two digits, imported, by chapter."""
    path = importlib.import_module(package).__path__
    names = sorted(m.name for m in pkgutil.iter_modules(path) if CHAPTER.fullmatch(m.name))
    return {name[2:]: importlib.import_module(f"{package}.{name}") for name in names}


def _collect() -> dict[str, Exercise]:
    """Every chapter's ``EXERCISES`` merged; an id must start with its chapter's number and appear once."""
    out: dict[str, Exercise] = {}
    for chapter, module in chapter_modules().items():
        for exercise_id, exercise in module.EXERCISES.items():
            if not exercise_id.startswith(f"{chapter}.") or exercise_id in out:
                raise ValueError(f"{module.__name__}: exercise id {exercise_id!r} is not chapter {chapter}'s or is taken")
            out[exercise_id] = exercise
    return out


#: exercise id (``"<chapter>.<n>"``) -> :class:`Exercise` (title, tests, name of the reference solution)
EXERCISES: dict[str, Exercise] = _collect()

__all__ = ["EXERCISES", "Exercise", "chapter_modules", "grade"]
