"""Exercises: one module of graders per chapter (``ch00`` ... ``ch12``) and, apart, their reference solutions
(:mod:`utils.exercises.solutions`, spoilers: only the solutions notebooks in `notebooks/solutions/` import them).

In a notebook: ``from utils.exercises import grade`` then ``grade("01.3", my_leave_one_out)``.
"""
from . import ch00, ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08, ch09, ch10, ch11, ch12
from .grader import grade

#: exercise id (``"<chapter>.<n>"``) -> (title, tests)
EXERCISES = {**ch00.EXERCISES, **ch01.EXERCISES, **ch02.EXERCISES, **ch03.EXERCISES, **ch04.EXERCISES,
             **ch05.EXERCISES, **ch06.EXERCISES, **ch07.EXERCISES,
             **ch08.EXERCISES, **ch09.EXERCISES, **ch10.EXERCISES, **ch11.EXERCISES, **ch12.EXERCISES}

__all__ = ["EXERCISES", "grade"]
