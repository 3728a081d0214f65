"""A preference family with a hidden "true" reward, for reward modelling and alignment (survey §3.1-3.2).

Human preference data is noisy comparisons of responses whose real quality nobody can write down.
Here we *can* write it down - :func:`true_reward` - and then hide it: a reward model sees only
pairwise labels drawn from the Bradley-Terry model ``P(a > b) = sigmoid((r(a) - r(b)) / tau)``.
Chapters can then measure how well a learned reward recovers the truth, and how a policy that
over-optimises the learned reward drifts away from the true one (reward hacking, §3.1.5).

The true reward of a completion for a problem is::

    1.0 * correct  +  0.2 * well_formed  +  0.3 * (fraction of good steps)  -  0.01 * (extra characters)

where *good steps* are valid and keep the target reachable (Countdown) or match the reference column
(addition), and *extra characters* counts length beyond the reference completion (verbosity).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Sequence

from .core import Problem, completion_text, format_completion
from .rewards import format_reward, outcome_reward, problem_to_json, process_rewards

W_CORRECT, W_FORMAT, W_PROCESS, W_LENGTH = 1.0, 0.2, 0.3, 0.01


def true_reward(problem: Problem, completion: Any) -> float:
    """The hidden ground-truth quality of a completion (see the module docstring). Never raises."""
    text = completion_text(completion)
    steps = process_rewards(problem, text)
    process = sum(steps) / len(steps) if steps else (1.0 if not problem.steps else 0.0)
    extra = max(0, len(text) - len(problem.completion()))
    return (W_CORRECT * outcome_reward(problem, text) + W_FORMAT * format_reward(problem, text)
            + W_PROCESS * process - W_LENGTH * min(extra, 200))


def _mutate_digit(s: str, rng: random.Random) -> str:
    idx = [i for i, c in enumerate(s) if c.isdigit()]
    if not idx:
        return s + "1"
    i = rng.choice(idx)
    return s[:i] + rng.choice([d for d in "0123456789" if d != s[i]]) + s[i + 1 :]


#: the kinds of candidate responses :func:`candidates` writes
KINDS = ("reference", "wrong_answer", "bad_step", "no_reasoning", "no_tags", "verbose", "truncated")


def candidate(problem: Problem, kind: str, rng: random.Random) -> str:
    """One response of a given ``kind`` (one of :data:`KINDS`) for ``problem``."""
    think, answer = ",".join(problem.steps), problem.answer
    if kind == "reference":
        return problem.completion()
    if kind == "wrong_answer":
        return format_completion(think, _mutate_digit(answer, rng) if answer else "x")
    if kind == "bad_step":
        steps = list(problem.steps) or [answer]
        i = rng.randrange(len(steps))
        steps[i] = _mutate_digit(steps[i], rng)
        return format_completion(",".join(steps), answer)
    if kind == "no_reasoning":
        return format_completion("", answer)
    if kind == "no_tags":
        return f"{think} so {answer}" if think else answer
    if kind == "verbose":
        filler = ",".join(rng.choice(["let me check", "hmm", "wait", "so"]) for _ in range(rng.randint(2, 5)))
        return format_completion(f"{think},{filler},{think}" if think else filler, answer)
    if kind == "truncated":
        full = problem.completion()
        return full[: rng.randint(1, max(1, len(full) - 1))]
    raise ValueError(f"unknown candidate kind {kind!r}; known: {KINDS}")


@dataclass(frozen=True)
class PreferencePair:
    """A labelled comparison. ``chosen`` was preferred by the (noisy) Bradley-Terry annotator."""

    problem: Problem
    chosen: str
    rejected: str
    chosen_reward: float
    rejected_reward: float

    def as_row(self) -> dict[str, Any]:
        """A dataset row: ``prompt`` (user text), ``chosen``, ``rejected``, true rewards, ``problem`` json."""
        return {"prompt": self.problem.prompt, "chosen": self.chosen, "rejected": self.rejected,
                "chosen_reward": self.chosen_reward, "rejected_reward": self.rejected_reward,
                "problem": problem_to_json(self.problem)}


def preference_pairs(
    problems: Sequence[Problem], pairs_per_problem: int = 2, tau: float = 0.2, seed: int = 0
) -> list[PreferencePair]:
    """Label random pairs of candidates with the Bradley-Terry annotator at temperature ``tau``.

    Smaller ``tau`` gives cleaner labels; ``tau -> 0`` always prefers the higher true reward.
    Pairs with equal true reward are skipped.
    """
    if tau <= 0:
        raise ValueError("tau must be positive")
    rng = random.Random(seed)
    out: list[PreferencePair] = []
    for p in problems:
        made = 0
        for _ in range(20 * pairs_per_problem):
            if made == pairs_per_problem:
                break
            a, b = (candidate(p, k, rng) for k in rng.sample(KINDS, 2))
            ra, rb = true_reward(p, a), true_reward(p, b)
            if abs(ra - rb) < 1e-9:
                continue
            p_a = 1 / (1 + math.exp(-(ra - rb) / tau))
            if rng.random() < p_a:
                out.append(PreferencePair(p, a, b, ra, rb))
            else:
                out.append(PreferencePair(p, b, a, rb, ra))
            made += 1
    return out
