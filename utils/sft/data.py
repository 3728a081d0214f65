"""SFT data from the world: conversations, TRL datasets, dialogues, mixtures (survey §4.1-4.4).

* :func:`conversations` - problems as chat conversations, with the worked solution (``cot=True``) or
  the answer alone; :func:`conversation` - a problem with a given completion (a teacher's, a sample);
* :func:`sft_dataset` - a ``datasets.Dataset`` in one of TRL's two conversational formats;
* :func:`dialogue_problems` - second turns of two-turn dialogues; :func:`by_turn` - a metric per turn;
* :func:`mix` - a mixture of conversation sources (e.g. replay against forgetting);
* :func:`strip_rationale`, :func:`format_rate` - the answer-only form, and how often the format holds.
"""
from __future__ import annotations

import random
from typing import Iterable, Literal, Sequence

from .. import world
from ..lm.batches import Conversation
from ..lm.training import epoch_batches
from ..world import Problem, format_completion, parse_completion


def conversations(problems: Iterable[Problem], *, cot: bool, system: str | None = None) -> list[Conversation]:
    """Reference chat conversations ``[system?, (user, assistant)*, user, assistant]`` of ``problems``.

    ``cot=True``: the assistant writes the world's worked solution ``<think>steps</think><answer>a</answer>``;
    ``cot=False``: the answer alone, ``<think></think><answer>a</answer>`` (no default: it is the question
    chapters 02-03 study). Dialogue problems (``meta["history"]``) become multi-turn conversations whose earlier
    assistant turns hold the earlier answers (:meth:`utils.world.Problem.messages`).
    """
    return [p.messages(cot=cot, system=system) for p in problems]


def conversation(problem: Problem, completion: str) -> Conversation:
    """The problem's chat (dialogue history and prompt) with ``completion`` as the last assistant turn."""
    return problem.messages(cot=True)[:-1] + [{"role": "assistant", "content": completion}]


def sft_dataset(
    problems: Sequence[Problem],
    fmt: Literal["messages", "prompt_completion"] = "messages",
    cot: bool = False,
    system: str | None = None,
):
    """A ``datasets.Dataset`` of conversations in one of TRL's conversational formats.

    ``"messages"``: one column ``messages`` (list of ``{"role", "content"}``); with a template that has
    ``{% generation %}`` markers, ``SFTConfig(assistant_only_loss=True)`` trains on every assistant turn.
    ``"prompt_completion"``: ``prompt`` (all messages but the last) and ``completion`` (the last assistant
    message); TRL then trains on the completion only - i.e. the *last* turn - and needs no markers.
    """
    from datasets import Dataset

    convs = conversations(problems, cot=cot, system=system)
    if fmt == "messages":
        return Dataset.from_dict({"messages": convs})
    if fmt == "prompt_completion":
        return Dataset.from_dict({"prompt": [c[:-1] for c in convs], "completion": [c[-1:] for c in convs]})
    raise ValueError(f"fmt must be 'messages' or 'prompt_completion', got {fmt!r}")


def is_dialogue(problem: Problem) -> bool:
    """True for the second turn of a dialogue (the problem carries an earlier turn in its history)."""
    return bool(problem.meta.get("history"))


def dialogue_problems(level: int, n: int, split: str = "train", seed: int = 0) -> list[Problem]:
    """``n`` distinct strings problems of one level that are second turns of two-turn dialogues.

    (:func:`utils.world.sample_problems` mixes single turns and dialogues about 70/30; this keeps the
    dialogues.) Deterministic for ``(level, split, seed)``.
    """
    out: list[Problem] = []
    draw = 4 * n + 20
    while len(out) < n:
        pool = world.sample_problems("strings", level, draw, split=split, seed=seed)
        out = [p for p in pool if is_dialogue(p)][:n]
        draw *= 2
        if draw > 200 * n + 10_000:
            raise ValueError(f"found only {len(out)} dialogue problems at level {level} in {split}")
    return out


def strip_rationale(completion: str) -> str:
    """``<think>...</think><answer>a</answer>`` -> ``<think></think><answer>a</answer>`` (answer-only form).

    A completion without an answer block is returned unchanged.
    """
    parsed = parse_completion(completion)
    return completion if parsed.answer is None else format_completion("", parsed.answer)


def mix(parts: Sequence[Sequence[Conversation]], fractions: Sequence[float], n: int, seed: int = 0) -> list[Conversation]:
    """A shuffled list of ``n`` conversations, ``fractions[i]`` of them from ``parts[i]`` (e.g. replay).

    Each part is walked through in reshuffled epochs (:func:`epoch_batches`), so a small part repeats
    and a large one contributes distinct items. Fractions are normalised; counts are rounded, the last
    part takes the remainder.
    """
    if len(parts) != len(fractions) or not parts or any(f < 0 for f in fractions) or sum(fractions) <= 0:
        raise ValueError("need one non-negative fraction per part, not all zero")
    if any(not part and f > 0 for part, f in zip(parts, fractions)):
        raise ValueError("a part with a positive fraction is empty")
    total = float(sum(fractions))
    counts = [int(round(n * f / total)) for f in fractions[:-1]]
    counts.append(n - sum(counts))
    out: list[Conversation] = []
    for i, (part, c) in enumerate(zip(parts, counts)):
        if c > 0:
            out += [part[j] for j in epoch_batches(len(part), c, seed + 7919 * (i + 1))(0)]
    random.Random(seed).shuffle(out)
    return out


def by_turn(problems: Sequence[Problem], values: Sequence[float]) -> dict[str, float]:
    """Mean of ``values`` over single-turn problems and over second turns of dialogues (NaN if none)."""
    out = {}
    for name, want in (("single-turn", False), ("second turn", True)):
        v = [x for p, x in zip(problems, values) if is_dialogue(p) == want]
        out[name] = float(sum(v) / len(v)) if v else float("nan")
    return out


def format_rate(texts: Sequence[str]) -> float:
    """Fraction of completions that are exactly one ``<think>`` block followed by one ``<answer>`` block."""
    return float(sum(world.parse_completion(t).well_formed for t in texts) / max(len(texts), 1))
