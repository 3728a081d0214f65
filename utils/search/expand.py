"""Expanding partial solutions by one reasoning step: the move every step-level search makes.

A *partial solution* is the completion text so far (``""``, ``"<think>7*3=21,"``, ...). :func:`expand` samples
``k`` continuations of each, every one ending at its next **step boundary** (:data:`STOPS`: a separator of
:data:`utils.world.SEPARATORS`, ``</think>`` or ``</answer>``) or at the end of text, in one batched
``sample(stop=STOPS)`` call: the sampler stops each row there, so no token is sampled and then thrown away, and
the ledger counts exactly the tokens the continuations hold. Beam search, tree of thoughts, verifier-guided
search and MCTS all build on it.

Shapes: ``M`` partial solutions, ``k`` continuations each.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..lm.compute import Ledger
from ..lm.generation import build_prompts, end_token_ids, sample
from ..world import ANSWER_CLOSE, SEPARATORS, THINK_CLOSE, Problem

#: where a step ends: each separator character, the end of the think block, the end of the answer
STOPS: tuple[str, ...] = (*SEPARATORS, THINK_CLOSE, ANSWER_CLOSE)

#: how a continuation ended (:attr:`Expansion.ends`)
ENDS = ("step", "think", "answer", "eos", "budget")


@dataclass
class Expansion:
    """``k`` continuations of each of ``M`` partial solutions.

    Attributes:
        prefixes: the ``M`` partial solutions expanded.
        texts: ``M`` lists of ``k`` continuations (the new text only: ``prefixes[i] + texts[i][j]`` is the state).
        ends: ``M`` lists of ``k`` labels of :data:`ENDS`: ``"step"`` (a separator), ``"think"`` (``</think>``),
            ``"answer"`` (``</answer>``), ``"eos"`` (the model ended the text), ``"budget"`` (``max_step_tokens``
            ran out inside a step).
        tokens: ``M`` lists of ``k`` tokens generated (the end-of-text token included where one was sampled).
    """

    prefixes: list[str]
    texts: list[list[str]]
    ends: list[list[str]]
    tokens: list[list[int]]

    def states(self) -> list[list[str]]:
        """``M`` lists of ``k`` partial solutions after the step: prefix + continuation."""
        return [[p + t for t in ts] for p, ts in zip(self.prefixes, self.texts)]

    def finished(self) -> list[list[bool]]:
        """Whether each new state is a whole completion (its answer closed, or the model ended the text)."""
        return [[e in ("answer", "eos") for e in es] for es in self.ends]


def _end_of(text: str, last_token: int, end_ids: set[int], n_tokens: int, budget: int) -> str:
    """The :data:`ENDS` label of one continuation from its text and its last kept token."""
    if last_token in end_ids:
        return "eos"
    if text.endswith(ANSWER_CLOSE):
        return "answer"
    if text.endswith(THINK_CLOSE):
        return "think"
    if text and text[-1] in SEPARATORS:
        return "step"
    return "budget" if n_tokens >= budget else "eos"


def expand(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    problems: Sequence[Problem],
    prefixes: Sequence[str],
    k: int,
    temperature: float = 1.0,
    max_step_tokens: int = 24,
    seed: int | None = 0,
    ledger: Ledger | None = None,
    batch_size: int = 256,
) -> Expansion:
    """``k`` sampled continuations of each partial solution, each up to and including its next step boundary.

    ``problems[i]`` is the problem of ``prefixes[i]``; the prompt is its chat prompt (:func:`build_prompts`)
    followed by the prefix. Rows are sampled in one :func:`~utils.lm.generation.sample` call (``n=k``, prompt-major,
    ``stop=STOPS``), so a seed fixes every continuation and each row is the prefix of the unstopped sample that
    seed would draw. Inside the answer block a separator ends a chunk too; expanding again continues the answer.
    ``ledger``: the tokens generated and prefilled and the batches, as :func:`sample` counts them.
    """
    if len(problems) != len(prefixes):
        raise ValueError(f"{len(problems)} problems but {len(prefixes)} prefixes")
    if k < 1 or max_step_tokens < 1:
        raise ValueError(f"need k >= 1 and max_step_tokens >= 1, got {k}, {max_step_tokens}")
    if not prefixes:
        return Expansion([], [], [], [])
    prompts = [p + pre for p, pre in zip(build_prompts(tok, problems), prefixes)]
    s = sample(model, tok, prompts, n=k, max_new_tokens=max_step_tokens, temperature=temperature, seed=seed,
               batch_size=batch_size, stop=STOPS, ledger=ledger)
    lens = s.completion_mask.sum(1).tolist()
    end_ids = end_token_ids(tok)
    ends = [_end_of(t, int(s.completion_ids[r, n - 1]) if n else -1, end_ids, n, max_step_tokens)
            for r, (t, n) in enumerate(zip(s.texts, lens))]
    rows = range(len(prefixes))
    return Expansion(list(prefixes), [s.texts[i * k:(i + 1) * k] for i in rows], [ends[i * k:(i + 1) * k] for i in rows],
                     [[int(n) for n in lens[i * k:(i + 1) * k]] for i in rows])
