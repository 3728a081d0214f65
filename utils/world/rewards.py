"""Reward functions over completions: outcome, format and process rewards.

Every function accepts any completion (a string, a TRL conversational completion ``[{"role", "content"}]``,
``None``, garbage, a megabyte of text) and returns a float; none of them raises. The TRL adapters
follow TRL 1.16's reward-function signature ``f(prompts, completions, **columns) -> list[float]``,
where the dataset column ``problem`` holds :func:`problem_to_json` of each row's problem.
"""
from __future__ import annotations

import json
from typing import Any, Callable

from .core import Problem, completion_text, parse_completion
from .registry import label_steps, score


def outcome_reward(problem: Problem, completion: Any) -> float:
    """1.0 for a correct final answer, else 0.0 (an outcome reward, survey §3.1.3)."""
    return score(problem, completion_text(completion))


def format_reward(problem: Problem | None, completion: Any) -> float:
    """1.0 if the completion is exactly ``<think>...</think><answer>...</answer>``, else 0.0."""
    return 1.0 if parse_completion(completion_text(completion)).well_formed else 0.0


def process_rewards(problem: Problem, completion: Any) -> list[float]:
    """One reward per reasoning step (a process reward, survey §3.1.4); ``[]`` when there are no steps.

    1.0 for a valid step after which the problem is still solvable (Countdown: the exact solver says so;
    addition: the step equals the reference column step), else 0.0. Families without a step labeller
    (strings, GSM8K) give ``[]``. Never raises on the completion.
    """
    labels = label_steps(problem, completion_text(completion)) or []
    return [1.0 if (lab.valid and lab.reachable is not False) else 0.0 for lab in labels]


def problem_to_json(problem: Problem) -> str:
    """Serialise a problem for a dataset column (round-trips through :func:`problem_from_json`)."""
    meta = {k: (list(v) if isinstance(v, tuple) else v) for k, v in problem.meta.items()}
    return json.dumps({"family": problem.family, "prompt": problem.prompt, "answer": problem.answer,
                       "steps": list(problem.steps), "level": problem.level, "meta": meta})


def problem_from_json(text: str) -> Problem:
    """Inverse of :func:`problem_to_json`."""
    d = json.loads(text)
    meta = dict(d["meta"])
    if "numbers" in meta:
        meta["numbers"] = tuple(meta["numbers"])
    if "history" in meta:
        meta["history"] = tuple(tuple(h) for h in meta["history"])
    return Problem(d["family"], d["prompt"], d["answer"], tuple(d["steps"]), d["level"], meta)


def trl_reward(fn: Callable[[Problem, Any], float]) -> Callable[..., list[float]]:
    """Wrap ``fn(problem, completion) -> float`` as a TRL reward function reading the ``problem`` column."""

    def reward(prompts: list | None = None, completions: list | None = None, problem: list[str] | None = None, **_: Any) -> list[float]:
        out = []
        for c, pj in zip(completions or [], problem or []):
            try:
                out.append(float(fn(problem_from_json(pj), c)))
            except KeyError:  # an unregistered family: a programming error, not a bad completion
                raise
            except Exception:
                out.append(0.0)
        return out

    reward.__name__ = f"{fn.__name__}"
    return reward
