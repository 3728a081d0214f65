"""Supervised fine-tuning on reasoning traces: where the training text comes from, and what it costs.

Chapter 03 of the course. The same SFT loss (maximum likelihood on the assistant's tokens, survey §2,
§4) is fed four kinds of data:

- **rationale or not** (§4.3): the world's worked solution ``<think>steps</think><answer>a</answer>``
  versus the answer alone ``<think></think><answer>a</answer>`` (:func:`sft_conversations`);
- **a teacher's rationales** (§4.5, §3.3.5): an exact solver or a stronger model writes the completions
  a student imitates (:func:`distill_dataset`, :func:`solver_completion`);
- **the model's own filtered samples** (rejection-sampling fine-tuning, §3.3.2, §4.6):
  sample ``k`` completions, keep the verified ones, train on them (:func:`rejection_sample`,
  :func:`keep_correct`);
- **one domain only** (§4.4), and the forgetting of other skills it causes (§7):
  :func:`measure_skills` and :func:`forgetting_report`.

:func:`sft` trains on any list of conversations with :func:`utils.training.train_lm`. Shapes: ``B``
batch, ``L`` sequence length.
"""
from __future__ import annotations

import copy
import random
from pathlib import Path
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence, Union

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from . import countdown
from .checkpoint import data_checksum
from .evaluation import evaluate
from .generation import generate_texts, is_tiny
from .training import IGNORE, chat_batch, train_lm
from .world import SYSTEM_PROMPT, Problem, format_completion, parse_completion, score

Conversation = list[dict[str, str]]
#: A teacher is a function ``problem -> completion or None`` (e.g. :func:`solver_completion`) or a model.
Teacher = Union[Callable[[Problem], Union[str, None]], PreTrainedModel]


# ----------------------------------------------------------------------------------------------
# Conversations
# ----------------------------------------------------------------------------------------------


def conversation(problem: Problem, completion: str) -> Conversation:
    """The problem's chat (dialogue history and prompt) with ``completion`` as the last assistant turn."""
    return problem.messages(cot=True)[:-1] + [{"role": "assistant", "content": completion}]


def sft_conversations(problems: Iterable[Problem], cot: bool = True) -> list[Conversation]:
    """Reference conversations: with the worked solution (``cot=True``) or the answer only (empty think)."""
    return [p.messages(cot=cot) for p in problems]


def strip_rationale(completion: str) -> str:
    """``<think>...</think><answer>a</answer>`` -> ``<think></think><answer>a</answer>`` (answer-only form).

    A completion without an answer block is returned unchanged.
    """
    parsed = parse_completion(completion)
    return completion if parsed.answer is None else format_completion("", parsed.answer)


def has_generation_markers(tok: PreTrainedTokenizerBase) -> bool:
    """Whether the chat template marks assistant turns with ``{% generation %}`` (the tiny model's does)."""
    return "{% generation %}" in (tok.chat_template or "") or "{%- generation %}" in (tok.chat_template or "")


def sft_batch(
    tok: PreTrainedTokenizerBase, conversations: Sequence[Conversation], max_length: int | None = None
) -> dict[str, torch.Tensor]:
    """Tokenize conversations for SFT with the loss on the assistant's tokens only.

    With a template that has ``{% generation %}`` markers (the tiny model) this is
    :func:`utils.training.chat_batch`; otherwise (SmolLM2, Qwen) :func:`utils.sft.sft_batch`, which finds
    the assistant turns from the template's rendering of prefixes. Real models get
    :data:`utils.world.SYSTEM_PROMPT` when a conversation has no system turn, exactly as
    :func:`utils.generation.build_prompts` prompts them.

    Returns ``input_ids``, ``attention_mask``, ``labels``: each ``[B, L]``, right-padded, ``labels``
    ``-100`` where no loss is taken.
    """
    if has_generation_markers(tok):
        return chat_batch(tok, conversations, max_length)
    from .sft import sft_batch as any_template_batch

    if not is_tiny(tok):
        conversations = [c if c[0]["role"] == "system" else [{"role": "system", "content": SYSTEM_PROMPT}, *c]
                         for c in conversations]
    return any_template_batch(tok, conversations, mode="assistant", max_length=max_length)


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------


def clone(model: PreTrainedModel) -> PreTrainedModel:
    """An independent copy (weights and all) to fine-tune while keeping the original."""
    return copy.deepcopy(model)


def epoch_batches(n_items: int, batch_size: int, seed: int = 0) -> Callable[[int], list[int]]:
    """``step -> indices``: walk through reshuffled epochs of ``range(n_items)``, ``batch_size`` at a time.

    Every item is seen once per epoch; a dataset smaller than a batch repeats inside the batch.
    """
    if n_items < 1 or batch_size < 1:
        raise ValueError(f"need n_items >= 1 and batch_size >= 1, got {n_items}, {batch_size}")
    perms: dict[int, list[int]] = {}

    def indices(step: int) -> list[int]:
        out = []
        for j in range(step * batch_size, (step + 1) * batch_size):
            epoch, r = divmod(j, n_items)
            if epoch not in perms:
                perm = list(range(n_items))
                random.Random(seed * 100_003 + epoch).shuffle(perm)
                perms[epoch] = perm
            out.append(perms[epoch][r])
        return out

    return indices


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


def sft(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    conversations: Sequence[Conversation],
    steps: int,
    batch_size: int,
    lr: float = 1e-3,
    warmup: int | None = None,
    seed: int = 0,
    max_length: int | None = None,
    desc: str = "SFT",
    checkpoint: str | Path | None = None,
) -> list[float]:
    """Fine-tune ``model`` in place on ``conversations`` (loss on assistant tokens, :func:`sft_batch`).

    ``steps`` AdamW steps of ``batch_size`` conversations drawn epoch by epoch (:func:`epoch_batches`),
    cosine learning rate with ``warmup`` (default: a tenth of the steps, at most 20). Returns the
    per-step losses.
    """
    if not conversations:
        raise ValueError("sft() needs at least one conversation")
    pick = epoch_batches(len(conversations), batch_size, seed)
    warmup = min(20, steps // 10 + 1) if warmup is None else warmup
    data = dict(data=data_checksum(conversations), batch_size=batch_size, seed=seed, max_length=max_length)
    return train_lm(model, lambda s: sft_batch(tok, [conversations[i] for i in pick(s)], max_length), steps,
                    lr=lr, warmup=warmup, desc=desc, checkpoint=checkpoint, data=data)


# ----------------------------------------------------------------------------------------------
# Teachers: distillation (§4.5, §3.3.5)
# ----------------------------------------------------------------------------------------------


def solver_completion(problem: Problem) -> str | None:
    """The exact teacher's completion: Countdown is solved from scratch by :func:`utils.countdown.solve`
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
    is then fine-tuned on these texts with :func:`sft`.
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


# ----------------------------------------------------------------------------------------------
# Rejection-sampling fine-tuning (§3.3.2, §4.6)
# ----------------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------------
# Skills and forgetting (§4.4, §7)
# ----------------------------------------------------------------------------------------------


def measure_skills(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    skills: Mapping[str, Sequence[Problem]],
    n_samples: int = 0,
    max_new_tokens: int = 96,
    batch_size: int = 256,
    seed: int = 0,
) -> dict[str, float]:
    """Accuracy per named skill: greedy accuracy, or mean pass@1 over ``n_samples`` samples at T = 1.

    ``skills`` maps a name (e.g. ``"countdown-3"``) to its test problems. One evaluation call for all.
    """
    names = list(skills)
    problems = [p for s in names for p in skills[s]]
    res = evaluate(model, tok, problems, n_samples=n_samples, greedy=n_samples == 0, max_new_tokens=max_new_tokens,
                   batch_size=batch_size, ks=(1,), seed=seed, progress=False)
    verdicts = res.greedy if n_samples == 0 else res.samples.mean(1)
    out, i = {}, 0
    for s in names:
        n = len(skills[s])
        out[s] = float(np.mean(verdicts[i : i + n])) if n else float("nan")
        i += n
    return out


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


# ----------------------------------------------------------------------------------------------
# Token-level distillation (the "logit" variant of §4.5)
# ----------------------------------------------------------------------------------------------


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
