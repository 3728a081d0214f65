"""GSM8K (Cobbe et al. 2021) as problems of the course's world: online only (survey §6, benchmarks).

The course runs offline on its synthetic world; on Colab or any machine with network access
(``COURSE_ONLINE=1``, which the Colab cell sets) :func:`load` reads the public ``openai/gsm8k`` dataset
through ``datasets`` (no login) and turns each row into a :class:`utils.world.Problem` of family
``"gsm8k"``, so the course's prompts (:func:`utils.lm.generation.build_prompts`), verifier
(:func:`utils.world.score`), evaluation and RL code take it unchanged::

    problems = gsm8k.load("test", n=200)                  # RuntimeError offline: never a silent empty list
    world.score(problems[0], "<think>...</think><answer>72</answer>")   # 1.0 or 0.0

Each problem: the question is the prompt; the reference rationale, with the calculator annotations
``<<48/2=24>>`` removed, is its single reasoning step (so ``problem.completion()`` is an SFT target in the
course's ``<think>``/``<answer>`` format); the number after ``####`` is the answer. The verifier compares
numbers: ``72``, ``72.0``, ``$72`` and ``1,234`` / ``1234`` match; an answer without a number, or a malformed
completion, scores 0. It is meant for real models: the tiny model's tokenizer covers the world's
alphabet, not free English.
"""
from __future__ import annotations

import os
import random
import re
from typing import Any, Callable, Mapping, Sequence

from .core import Family, Problem

DATASET = ("openai/gsm8k", "main")
SPLITS = ("train", "test")
_ANNOTATION = re.compile(r"<<[^<>]*>>")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def parse_number(text: str) -> float | None:
    """The last number written in ``text`` (``"$1,234.50"`` -> 1234.5), or ``None`` if there is none."""
    found = _NUMBER.findall(str(text))
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:
        return None


def from_row(row: Mapping[str, Any], key: str) -> Problem:
    """One GSM8K row (``{"question", "answer"}``; the answer ends in ``#### <number>``) as a :class:`Problem`.

    Raises ``ValueError`` for a row without the ``####`` final answer (the dataset has none).
    """
    question, solution = str(row["question"]).strip(), str(row["answer"])
    if "####" not in solution:
        raise ValueError(f"GSM8K row {key} has no '#### <answer>' line: {solution[-80:]!r}")
    rationale, final = solution.rsplit("####", 1)
    answer = final.strip().replace(",", "")
    if parse_number(answer) is None:
        raise ValueError(f"GSM8K row {key}: final answer {final.strip()!r} is not a number")
    steps = " ".join(line.strip() for line in _ANNOTATION.sub("", rationale).splitlines() if line.strip())
    return Problem("gsm8k", question, answer, (steps,) if steps else (), 0, {"key": key, "split": key.split("-")[0]})


def verify_answer(problem: Problem, answer: str) -> float:
    """1.0 if the last number in ``answer`` equals the reference number, else 0.0."""
    got, want = parse_number(answer), parse_number(problem.answer)
    return float(got is not None and want is not None and abs(got - want) <= 1e-6 * max(1.0, abs(want)))


def _no_generator(rng: random.Random, level: int) -> Problem:
    raise ValueError("GSM8K is a fixed dataset, not a generator: use utils.world.gsm8k.load(split, n) instead of "
                     "world.sample_problems('gsm8k', ...)")


FAMILY = Family("gsm8k", _no_generator, verify_answer, (0,))


def load(
    split: str = "test",
    n: int | None = None,
    seed: int = 0,
    online: bool | None = None,
    loader: Callable[..., Sequence[Mapping[str, Any]]] | None = None,
) -> list[Problem]:
    """GSM8K problems of one split (all of them, or ``n`` drawn without repetition, deterministically from ``seed``).

    Args:
        split: ``"train"`` (7,473 problems) or ``"test"`` (1,319).
        online: allow the download; ``None`` = ``$COURSE_ONLINE == "1"``.
        loader: ``datasets.load_dataset`` by default (``loader(name, config, split=split)``); tests pass a fake.

    Raises:
        RuntimeError: offline, or when the download fails (the message says what to do).
        ValueError: an unknown split, or ``n`` larger than the split.
    """
    if split not in SPLITS:
        raise ValueError(f"GSM8K splits are {SPLITS}, got {split!r}")
    online = os.environ.get("COURSE_ONLINE", "0") == "1" if online is None else online
    if not online:
        raise RuntimeError(
            "GSM8K is downloaded from the Hugging Face Hub (openai/gsm8k, public, no login), and this course runs "
            "offline by default. Set COURSE_ONLINE=1 (the Colab cell does) or pass online=True; offline, use the "
            "world's own families (utils.world)."
        )
    if loader is None:
        try:
            from datasets import load_dataset
        except ImportError as e:  # pragma: no cover - datasets is a course dependency
            raise RuntimeError("GSM8K needs the `datasets` package: pip install datasets") from e
        loader = load_dataset
    try:
        rows = loader(*DATASET, split=split)
    except Exception as e:
        raise RuntimeError(f"could not load GSM8K ({DATASET[0]}, split {split!r}): {e}") from e
    indices = list(range(len(rows)))
    if n is not None:
        if not 0 < n <= len(indices):
            raise ValueError(f"asked for {n} GSM8K {split} problems; the split has {len(indices)}")
        indices = sorted(random.Random(f"gsm8k-{split}-{seed}").sample(indices, n))
    return [from_row(rows[i], f"{split}-{i}") for i in indices]
