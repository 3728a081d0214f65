"""Where SFT data comes from besides the reference: teachers, the model's own verified samples, and what
training on one domain costs (survey §3.3.2, §3.3.5, §4.4-4.6, §7).

* **a teacher's rationales** (sequence-level distillation): :func:`distill_dataset`, :func:`solver_completion`;
* **token-level distillation on fixed data**: :func:`token_kd_loss` (forward KL per token; TRL's GKD loss with
  ``beta=0`` on these positions - GKD itself distils on the *student's own* samples, on-policy);
* **rejection-sampling fine-tuning**: :func:`rejection_sample`, :func:`keep_correct`;
* **forgetting**: :func:`forgetting`, :func:`forgetting_report` (over per-skill accuracies from
  :func:`utils.lm.evaluation.evaluate_skills`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence, Union

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..lm.batches import Conversation
from ..lm.generation import generate_texts
from ..lm.logprobs import IGNORE
from ..world import Problem, countdown, format_completion, parse_completion, score
from .data import conversation

#: A teacher is a function ``problem -> completion or None`` (e.g. :func:`solver_completion`) or a model.
Teacher = Union[Callable[[Problem], Union[str, None]], PreTrainedModel]


def solver_completion(problem: Problem) -> str | None:
    """The exact teacher's completion: Countdown is solved from scratch by :func:`utils.world.countdown.solve`
    (its own, canonical route, not the generator's), other families use their reference worked solution.
    ``None`` when the solver finds nothing (never for the world's generated problems).
    """
    if problem.family == "countdown":
        sol = countdown.solve(problem.meta["numbers"], problem.meta["target"])
        return None if sol is None else format_completion(",".join(sol[0]), sol[1])
    return problem.completion(cot=True)


@dataclass
class DistillData:
    """What a teacher wrote.

    Attributes:
        conversations: the SFT data (one per kept completion).
        pairs: ``(problem, completion)`` behind each conversation.
        teacher_accuracy: fraction of the teacher's completions that verify (before any filtering).
    """

    conversations: list[Conversation]
    pairs: list[tuple[Problem, str]]
    teacher_accuracy: float


def distill_dataset(
    teacher: Teacher,
    problems: Sequence[Problem],
    tok: PreTrainedTokenizerBase | None = None,
    only_correct: bool = False,
    temperature: float = 0.0,
    max_new_tokens: int = 96,
    batch_size: int = 256,
    seed: int = 0,
) -> DistillData:
    """Let ``teacher`` write one completion per problem; optionally keep only the verified ones.

    ``teacher`` is a function ``problem -> completion`` (e.g. :func:`solver_completion`) or a causal LM
    (then ``tok`` is needed; it decodes greedily by default). Sequence-level distillation: the student
    is then fine-tuned on these texts with :func:`utils.sft.fine_tune`.
    """
    problems = list(problems)
    if isinstance(teacher, torch.nn.Module):
        if tok is None:
            raise ValueError("a model teacher needs its tokenizer (tok=...)")
        texts = [t[0] for t in generate_texts(teacher, tok, problems, 1, temperature, max_new_tokens, batch_size, seed)]
    else:
        texts = [teacher(p) for p in problems]
    ok = [t is not None and score(p, t) == 1.0 for p, t in zip(problems, texts)]
    pairs = [(p, t) for p, t, good in zip(problems, texts, ok) if t is not None and (good or not only_correct)]
    return DistillData([conversation(p, t) for p, t in pairs], pairs, float(np.mean(ok)) if ok else float("nan"))


def keep_correct(
    problems: Sequence[Problem],
    samples: Sequence[Sequence[str]],
    max_per_problem: int | None = None,
    dedupe: bool = True,
    well_formed: bool = True,
) -> list[tuple[Problem, str]]:
    """The rejection-sampling filter: ``(problem, completion)`` for each sample that verifies.

    ``samples[i]`` are the completions of ``problems[i]``. A sample is kept when :func:`utils.world.score`
    gives 1.0 and (with ``well_formed``) it is exactly one think block then one answer block; with
    ``dedupe`` identical texts (ignoring surrounding whitespace) are kept once; at most ``max_per_problem``
    per problem, in sample order. Never raises on odd texts.
    """
    if len(problems) != len(samples):
        raise ValueError(f"{len(problems)} problems but {len(samples)} lists of samples")
    kept: list[tuple[Problem, str]] = []
    for p, texts in zip(problems, samples):
        seen: set[str] = set()
        n = 0
        for t in texts:
            if max_per_problem is not None and n >= max_per_problem:
                break
            if not isinstance(t, str) or score(p, t) != 1.0:
                continue
            if well_formed and not parse_completion(t).well_formed:
                continue
            key = t.strip()
            if dedupe and key in seen:
                continue
            seen.add(key)
            kept.append((p, key))
            n += 1
    return kept


@dataclass
class RejectionSamples:
    """The outcome of :func:`rejection_sample`.

    Attributes:
        pairs: kept ``(problem, completion)`` pairs.
        conversations: the same as SFT conversations.
        correct: ``[P, k]`` 0/1 verdicts of every sample (before de-duplication).
        texts: ``P`` lists of ``k`` sampled completions.
    """

    pairs: list[tuple[Problem, str]]
    conversations: list[Conversation]
    correct: np.ndarray
    texts: list[list[str]] = field(repr=False)

    @property
    def accept_rate(self) -> float:
        """Fraction of all samples that verified."""
        return float(self.correct.mean()) if self.correct.size else float("nan")

    @property
    def coverage(self) -> float:
        """Fraction of problems with at least one correct sample (the problems RFT can learn from)."""
        return float(self.correct.any(1).mean()) if self.correct.size else float("nan")


def rejection_sample(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    problems: Sequence[Problem],
    k: int,
    temperature: float = 1.0,
    max_new_tokens: int = 96,
    batch_size: int = 256,
    seed: int = 0,
    max_per_problem: int | None = None,
    dedupe: bool = True,
    progress: bool = True,
) -> RejectionSamples:
    """Sample ``k`` completions per problem from ``model`` and keep the verified ones (:func:`keep_correct`)."""
    problems = list(problems)
    texts = generate_texts(model, tok, problems, k, temperature, max_new_tokens, batch_size, seed, progress)
    correct = np.array([[score(p, t) for t in ts] for p, ts in zip(problems, texts)], dtype=float).reshape(len(problems), k)
    pairs = keep_correct(problems, texts, max_per_problem, dedupe)
    return RejectionSamples(pairs, [conversation(p, t) for p, t in pairs], correct, texts)


def forgetting(before: Mapping[str, float], after: Mapping[str, float], held_out: Iterable[str]) -> float:
    """Mean drop of accuracy on skills that were **not** trained: ``mean_s (before[s] - after[s])``.

    Positive: the fine-tuning made those skills worse (forgetting); negative: it helped them
    (positive backward transfer). Raises ``ValueError`` for an empty ``held_out``.
    """
    keys = list(held_out)
    if not keys:
        raise ValueError("forgetting needs at least one held-out skill")
    return float(np.mean([before[k] - after[k] for k in keys]))


def forgetting_report(
    before: Mapping[str, float], after: Mapping[str, float], trained: Iterable[str]
) -> dict[str, float]:
    """``gain`` (mean improvement on ``trained`` skills), ``forgetting`` (:func:`forgetting` on the rest)
    and ``delta/<skill>`` = after − before for every skill."""
    trained = [k for k in trained if k in before]
    held_out = [k for k in before if k not in trained]
    out = {"gain": float(np.mean([after[k] - before[k] for k in trained])) if trained else float("nan"),
           "forgetting": forgetting(before, after, held_out) if held_out else float("nan")}
    out.update({f"delta/{k}": after[k] - before[k] for k in before})
    return out


def token_kd_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """Forward KL ``KL(teacher || student)`` per token, averaged over positions where ``labels != -100``.

    ``student_logits``, ``teacher_logits``: ``[B, L, V]`` (same positions, same vocabulary);
    ``labels``: ``[B, L]``. Logits are divided by ``temperature`` first. Equals TRL's
    ``GKDTrainer.generalized_jsd_loss(..., beta=0)``. The positions are taken as given: to distil
    next-token predictions pass ``logits[:, :-1]`` and ``labels[:, 1:]``.
    """
    s = (student_logits.float() / temperature).log_softmax(-1)
    t = (teacher_logits.float() / temperature).log_softmax(-1)
    kl = (t.exp() * (t - s)).sum(-1)  # [B, L]
    mask = labels != IGNORE
    return kl[mask].sum() / mask.sum().clamp(min=1)
