"""String instructions: the instruction-following and dialogue family (survey §4.1-4.2).

Single-turn::

    prompt:  reverse cat        answer: tac
    prompt:  count a in banana  answer: 3

Multi-turn (dialogue): a second instruction refers to the previous answer (``now sort it``), so the
model must use the conversation history. Every output is checkable exactly.
"""
from __future__ import annotations

import random

from .core import Family, Problem

LEVELS = (1, 2, 3)  # word length 3-4, 5-6, 7-8
_LEN = {1: (3, 4), 2: (5, 6), 3: (7, 8)}
VOWELS = set("aeiou")

#: name -> (instruction template, function). ``{w}`` is the word.
OPERATIONS = {
    "reverse": ("reverse {w}", lambda w: w[::-1]),
    "sort": ("sort {w}", lambda w: "".join(sorted(w))),
    "dedupe": ("dedupe {w}", lambda w: "".join(dict.fromkeys(w))),
    "vowels": ("vowels of {w}", lambda w: "".join(c for c in w if c in VOWELS)),
    "length": ("length of {w}", lambda w: str(len(w))),
    "first": ("first letter of {w}", lambda w: w[:1]),
    "last": ("last letter of {w}", lambda w: w[-1:]),
    "double": ("double {w}", lambda w: w + w),
}
#: operations whose output is again a word, so a follow-up turn can act on it
CHAINABLE = ("reverse", "sort", "dedupe", "double")


#: the letters words are made of (a small alphabet, so that a tiny model sees each letter often)
ALPHABET = "abcdefghijo"


def _word(rng: random.Random, level: int) -> str:
    lo, hi = _LEN[level]
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(lo, hi)))


def make_problem(op: str, word: str, history: tuple[tuple[str, str], ...] = (), level: int | None = None) -> Problem:
    """Build a string task; ``history`` holds earlier ``(user, answer)`` turns of a dialogue.

    ``level`` defaults to the word length's level (1: 3-4 letters, 2: 5-6, 3: 7 or more).
    """
    if op not in OPERATIONS:
        raise ValueError(f"unknown string operation {op!r}; known: {sorted(OPERATIONS)}")
    if not word or not word.isalpha() or not word.islower():
        raise ValueError(f"string tasks use lower-case words, got {word!r}")
    template, fn = OPERATIONS[op]
    prompt = template.format(w=word) if not history else f"now {template.format(w='it')}"
    key = "/".join(u for u, _ in history) + "/" + prompt if history else prompt
    return Problem(
        family="strings",
        prompt=prompt,
        answer=fn(word),
        level=level if level is not None else max(1, min(3, (len(word) - 1) // 2)),
        meta={"op": op, "word": word, "history": history, "key": key},
    )


def generate(rng: random.Random, level: int) -> Problem:
    """A single-turn task (70%) or the second turn of a two-turn dialogue (30%)."""
    if level not in LEVELS:
        raise ValueError(f"strings levels are {LEVELS}, got {level}")
    w = _word(rng, level)
    if rng.random() < 0.7:
        return make_problem(rng.choice(sorted(OPERATIONS)), w, level=level)
    first = make_problem(rng.choice(CHAINABLE), w)
    op2 = rng.choice([o for o in sorted(OPERATIONS) if o != first.meta["op"]])
    return make_problem(op2, first.answer, history=((first.prompt, first.answer),), level=level)


def verify_answer(problem: Problem, answer: str) -> float:
    """Exact match after stripping surrounding whitespace."""
    return 1.0 if isinstance(answer, str) and answer.strip() == problem.answer else 0.0


FAMILY = Family("strings", generate, verify_answer, LEVELS)
