"""The course's synthetic reasoning world: the problem type, the chat format, the train/test split.

Every task family (``countdown``, ``addition``, ``strings``) produces :class:`Problem` objects whose
answers - and, for Countdown and addition, whose intermediate steps - can be checked exactly.
A model answers in one format that both the tiny model and a real instruct model can follow::

    <think>7*3=21,21+5=26</think><answer>(7*3)+5</answer>

Parsing (:func:`parse_completion`) and every verifier accept *any* string and never raise.
"""
from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field
from typing import Any, Callable

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"

#: System prompt for real instruct models (the tiny model was trained without one).
SYSTEM_PROMPT = (
    "You solve small puzzles. Think step by step inside <think></think>, writing one operation per "
    "step separated by commas (for example 7*3=21,21+5=26), then give only the final answer inside "
    "<answer></answer>."
)

#: Fraction of each family's problem space reserved for testing (chosen by a hash of the problem).
TEST_FRACTION = 0.2


@dataclass(frozen=True)
class Problem:
    """One task instance.

    Attributes:
        family: task family name, e.g. ``"countdown"``.
        prompt: the user's message (what the model sees).
        answer: a reference final answer (one of possibly many correct ones).
        steps: a reference worked solution, one step per item (empty for families without steps).
        level: difficulty level inside the family (e.g. the number of operands).
        meta: family-specific data the verifier needs (numbers, target, operands...).
    """

    family: str
    prompt: str
    answer: str
    steps: tuple[str, ...] = ()
    level: int = 0
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def uid(self) -> str:
        """A canonical identity of the problem (used for the train/test split)."""
        return f"{self.family}|{self.meta.get('key', self.prompt)}"

    @property
    def split(self) -> str:
        """``"test"`` or ``"train"``: fixed forever by a hash of :attr:`uid` (a dataset's own split when
        ``meta["split"]`` gives one, e.g. :mod:`utils.world.gsm8k`)."""
        return self.meta.get("split") or split_of(self.uid)

    def completion(self, cot: bool = True) -> str:
        """The reference completion in the course's format (with or without the reasoning)."""
        return format_completion(",".join(self.steps) if cot else "", self.answer)

    def messages(self, cot: bool = True, system: str | None = None) -> list[dict[str, str]]:
        """Chat messages ``[system?, (user, assistant)*, user, assistant]`` for supervised fine-tuning."""
        msgs = [{"role": "system", "content": system}] if system else []
        for user, answer in self.meta.get("history", ()):  # earlier turns of a dialogue
            msgs += [
                {"role": "user", "content": user},
                {"role": "assistant", "content": format_completion("", answer)},
            ]
        return msgs + [
            {"role": "user", "content": self.prompt},
            {"role": "assistant", "content": self.completion(cot)},
        ]


def split_of(uid: str) -> str:
    """Assign a problem identity to ``"train"`` or ``"test"`` by a stable SHA-256 hash."""
    h = int.from_bytes(hashlib.sha256(uid.encode()).digest()[:8], "big")
    return "test" if (h % 10_000) < TEST_FRACTION * 10_000 else "train"


def format_completion(think: str, answer: str) -> str:
    """``<think>{think}</think><answer>{answer}</answer>`` (the think block is kept even when empty)."""
    return f"{THINK_OPEN}{think}{THINK_CLOSE}{ANSWER_OPEN}{answer}{ANSWER_CLOSE}"


@dataclass(frozen=True)
class Parsed:
    """What :func:`parse_completion` found in a completion.

    ``think``/``answer`` are ``None`` when the block is missing; ``well_formed`` is true when the text is
    exactly one think block followed by one answer block (whitespace and an end-of-text marker allowed).
    """

    think: str | None
    answer: str | None
    well_formed: bool


_WELL_FORMED = re.compile(
    r"^\s*<think>(?P<think>(?:(?!<think>|</think>|<answer>|</answer>).)*)</think>\s*"
    r"<answer>(?P<answer>(?:(?!<think>|</think>|<answer>|</answer>).)*)</answer>\s*$",
    re.DOTALL,
)
_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)

#: Longest completion the parser looks at (longer input is truncated, not rejected).
MAX_PARSE_CHARS = 20_000


def parse_completion(text: Any) -> Parsed:
    """Split a completion into its think and answer blocks. Accepts anything; never raises.

    Non-strings give an empty :class:`Parsed`. The *last* answer block counts when several exist.
    """
    if not isinstance(text, str):
        return Parsed(None, None, False)
    text = text[:MAX_PARSE_CHARS]
    m = _WELL_FORMED.match(text)
    if m:
        return Parsed(m.group("think"), m.group("answer").strip(), True)
    thinks = _THINK.findall(text)
    answers = _ANSWER.findall(text)
    return Parsed(thinks[0] if thinks else None, answers[-1].strip() if answers else None, False)


# ----------------------------------------------------------------------------------------------
# Reasoning steps: the one definition every labeller, reward model and search reads.
# ----------------------------------------------------------------------------------------------

#: The characters that end a reasoning step inside the think block (``7*3=21,21+5=26``).
SEPARATORS = ",\n;"
#: The most steps of one completion that step labellers (and process rewards) look at.
MAX_STEPS = 32
_SEPARATOR = re.compile(f"[{re.escape(SEPARATORS)}]")


def completion_text(completion: Any) -> str:
    """Plain text of a completion: strings pass through; TRL chat completions are joined; else ``""``."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "".join(m.get("content", "") for m in completion if isinstance(m, dict) and isinstance(m.get("content"), str))
    if isinstance(completion, dict) and isinstance(completion.get("content"), str):
        return completion["content"]
    return ""


def split_steps(think: str | None) -> list[str]:
    """Split a think block into steps at the :data:`SEPARATORS` (blanks dropped)."""
    if not think:
        return []
    return [s.strip() for s in _SEPARATOR.split(think) if s.strip()]


def step_boundaries(completion: Any) -> list[int]:
    """Character positions (in the completion) where each reasoning step ends: its separator, or ``</think>``.

    One position per step that :func:`split_steps` finds in the think block (blank segments skipped, at most
    :data:`MAX_STEPS`), so ``len(step_boundaries(c)) == len(process_rewards(p, c))`` for Countdown. No think
    block (or no ``</think>``): ``[]``. Never raises.
    """
    text = completion_text(completion)
    start = text.find(THINK_OPEN)
    if start < 0:
        return []
    start += len(THINK_OPEN)
    end = text.find(THINK_CLOSE, start)
    if end < 0:
        return []
    out, seg_start = [], start
    for m in list(_SEPARATOR.finditer(text, start, end)) + [None]:
        pos = end if m is None else m.start()
        if text[seg_start:pos].strip():
            out.append(pos)
        seg_start = pos + 1
    return out[:MAX_STEPS]


# ----------------------------------------------------------------------------------------------
# Task families: a generator, an answer verifier and (optionally) a step labeller.
# ----------------------------------------------------------------------------------------------

Generator = Callable[[random.Random, int], Problem]
Verifier = Callable[[Problem, str], float]


@dataclass(frozen=True)
class StepLabel:
    """The verdict on one reasoning step.

    ``valid``: the step is correct in itself (Countdown: right arithmetic on values still available;
    addition: equals the reference column step). ``reachable``: after the step the problem can still be
    solved (Countdown's solver decides it); ``None`` for families without that notion (addition).
    """

    text: str
    valid: bool
    reachable: bool | None


#: ``step_labels(problem, think) -> one StepLabel per step`` (``think`` may be ``None``: no steps).
StepLabeller = Callable[[Problem, "str | None"], "list[StepLabel]"]
#: ``reorder(problem, k) -> up to k problems``: the same problem stated in other orders (the original first).
Reorderer = Callable[[Problem, int], "list[Problem]"]


@dataclass(frozen=True)
class Family:
    """A task family.

    Attributes:
        name: the name problems carry in :attr:`Problem.family`.
        generate: ``generate(rng, level) -> Problem``.
        verify_answer: ``verify_answer(problem, answer) -> 0.0 or 1.0`` (may raise on odd input;
            :func:`utils.world.score` turns that into 0).
        levels: the difficulty levels ``generate`` accepts.
        step_labels: an exact per-step verifier, or ``None`` for families whose steps cannot be checked
            (then evaluation reports no step statistics and process rewards are empty).
        reachability: whether ``step_labels`` decides :attr:`StepLabel.reachable` (Countdown's solver does).
        reorder: the problem with its inputs listed in other orders (a Countdown multiset of numbers), or
            ``None`` for families whose prompt has one natural order (see :func:`utils.world.reorderings`).
    """

    name: str
    generate: Generator
    verify_answer: Verifier
    levels: tuple[int, ...]
    step_labels: StepLabeller | None = None
    reachability: bool = False
    reorder: Reorderer | None = None
