"""The registry of task families, and what needs it: sampling problems and scoring completions.

Every family of the course is registered here, explicitly, when :mod:`utils.world` is imported: no family
depends on having been imported first. A family name that is not registered is a programming error and
raises a ``KeyError`` naming the known families; a *completion* never raises (it scores 0).
"""
from __future__ import annotations

import random
from typing import Any, Iterator

from . import addition, countdown, gsm8k, strings
from .core import Family, Problem, StepLabel, parse_completion

FAMILIES: dict[str, Family] = {f.name: f for f in (countdown.FAMILY, addition.FAMILY, strings.FAMILY, gsm8k.FAMILY)}


def register(family: Family) -> Family:
    """Add a new family (e.g. one a student writes); re-registering a different family under a taken name
    is refused."""
    if family.name in FAMILIES and FAMILIES[family.name] is not family:
        raise ValueError(f"a family named {family.name!r} is already registered")
    FAMILIES[family.name] = family
    return family


def get_family(name: str) -> Family:
    """Look up a family by name; ``KeyError`` naming the known families for an unknown one."""
    if name not in FAMILIES:
        raise KeyError(f"unknown task family {name!r}; known families: {sorted(FAMILIES)}")
    return FAMILIES[name]


def sample_problems(
    family: str, level: int, n: int, split: str = "train", seed: int = 0, unique: bool = True
) -> list[Problem]:
    """Draw ``n`` problems of one family and level from one split, deterministically from ``seed``.

    With ``unique=True`` no problem repeats; if the split holds fewer than ``n`` distinct problems
    a ``ValueError`` says so rather than silently returning fewer.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    fam = get_family(family)
    if level not in fam.levels:
        raise ValueError(f"{family} has levels {fam.levels}, got {level}")
    rng = random.Random(f"{family}-{level}-{split}-{seed}")
    out: list[Problem] = []
    seen: set[str] = set()
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 200 * n + 10_000:
            raise ValueError(
                f"could only find {len(out)} distinct {split} problems for {family} level {level} "
                f"(asked for {n})"
            )
        p = fam.generate(rng, level)
        if p.split != split or (unique and p.uid in seen):
            continue
        seen.add(p.uid)
        out.append(p)
    return out


def iter_problems(family: str, level: int, split: str = "train", seed: int = 0) -> Iterator[Problem]:
    """An endless deterministic stream of problems (repeats allowed) from one split."""
    fam = get_family(family)
    rng = random.Random(f"stream-{family}-{level}-{split}-{seed}")
    while True:
        p = fam.generate(rng, level)
        if p.split == split:
            yield p


def score(problem: Problem, completion: Any) -> float:
    """1.0 if the completion's final answer is correct for ``problem``, else 0.0.

    Never raises on the *completion* (any object, malformed tags, a verifier that trips on odd text: 0.0).
    An unregistered ``problem.family`` is a programming error: ``KeyError``, not a silent 0.
    """
    fam = get_family(problem.family)
    parsed = parse_completion(completion)
    if parsed.answer is None:
        return 0.0
    try:
        return float(fam.verify_answer(problem, parsed.answer))
    except Exception:  # a verifier tripping on odd text must not crash a training run; it counts as wrong
        return 0.0


def reorderings(problem: Problem, k: int) -> list[Problem]:
    """``problem`` stated in up to ``k`` orders, the original first (``k >= 1``).

    Countdown lists a multiset of numbers in one order, and a small model's accuracy depends on that order;
    evaluating every ordering averages it out. A family without a :attr:`Family.reorder` gives ``[problem]``.
    """
    if k < 1:
        raise ValueError(f"need k >= 1 orderings, got {k}")
    fam = get_family(problem.family)
    return [problem] if fam.reorder is None or k == 1 else fam.reorder(problem, k)


def label_steps(problem: Problem, completion: Any) -> list[StepLabel] | None:
    """Per-step verdicts on a completion's think block, or ``None`` for a family without a step labeller.

    Never raises on the completion (odd text gives ``[]``); ``KeyError`` for an unregistered family.
    """
    fam = get_family(problem.family)
    if fam.step_labels is None:
        return None
    try:
        return fam.step_labels(problem, parse_completion(completion).think)
    except Exception:
        return []
