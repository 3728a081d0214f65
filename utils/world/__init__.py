"""The world: tasks whose answers and steps are exactly checkable. Builds on nothing else of the course; imports no torch.

* :mod:`.core` - the :class:`Problem` type, the ``<think>``/``<answer>`` format and its parser, the
  train/test split, the :class:`Family` and :class:`StepLabel` types, and the one definition of a reasoning step
  (:data:`SEPARATORS`, :data:`MAX_STEPS`, :func:`split_steps`, :func:`step_boundaries`).
* :mod:`.countdown`, :mod:`.addition`, :mod:`.strings`, :mod:`.gsm8k` - the task families (GSM8K online only).
* :mod:`.registry` - every family registered explicitly; :func:`sample_problems`, :func:`score`,
  :func:`label_steps`, :func:`reorderings` (unknown families raise a ``KeyError``; completions never raise).
* :mod:`.rewards` - outcome, format and process rewards; TRL reward adapters.
* :mod:`.preferences` - candidate completions with a hidden true reward, Bradley-Terry labelled pairs.

``from utils import world`` then ``world.sample_problems("countdown", 3, 10)``, ``world.score(p, text)``.
"""
from . import addition, countdown, gsm8k, preferences, rewards, strings
from .core import (
    ANSWER_CLOSE,
    ANSWER_OPEN,
    MAX_PARSE_CHARS,
    MAX_STEPS,
    SEPARATORS,
    SYSTEM_PROMPT,
    TEST_FRACTION,
    THINK_CLOSE,
    THINK_OPEN,
    Family,
    Parsed,
    Problem,
    StepLabel,
    completion_text,
    format_completion,
    parse_completion,
    split_of,
    split_steps,
    step_boundaries,
)
from .registry import FAMILIES, get_family, iter_problems, label_steps, register, reorderings, sample_problems, score

__all__ = [
    "ANSWER_CLOSE", "ANSWER_OPEN", "FAMILIES", "MAX_PARSE_CHARS", "MAX_STEPS", "SEPARATORS", "SYSTEM_PROMPT", "TEST_FRACTION", "THINK_CLOSE",
    "THINK_OPEN", "Family", "Parsed", "Problem", "StepLabel", "addition", "completion_text", "countdown", "format_completion",
    "get_family", "gsm8k", "iter_problems", "label_steps", "parse_completion", "preferences", "register",
    "reorderings", "rewards", "sample_problems", "score", "split_of", "split_steps", "step_boundaries", "strings",
]
