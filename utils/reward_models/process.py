"""Outcome and process reward models (survey §3.1.3-3.1.4): an ORM scores a whole completion, a PRM every step.

Both are the course's scalar-head reward model (:func:`utils.reward_models.load_reward_model`, an LM plus one
linear layer ``score: hidden -> 1``), trained with binary cross-entropy instead of Bradley-Terry:

* **ORM** - the head read at the last token, target = the final answer's correctness (``utils.world.score``).
* **PRM** - the *same* head read at every **step boundary**: the separator that ends a step (``,``) and the
  ``</think>`` tag that ends the last one, target = a per-step label. Two labelings:

  - *exact*: the solver's verdict, ``utils.world.rewards.process_rewards`` (valid and the target still reachable);
  - *Monte-Carlo* (Math-Shepherd, arXiv 2312.08935): from each step's prefix, ``K`` rollouts of the policy;
    hard label = any rollout reaches a correct answer, soft label = the fraction that does.

* Aggregating a PRM's step probabilities into one score: ``min``, ``last``, ``product``, ``mean``.
* :func:`course_orm` / :func:`course_prm` - load chapter 06's models from ``profile.model_dir("orm-06")`` /
  ``profile.model_dir("prm-06")`` (``"prm-mc-06"`` for the Monte-Carlo labels), or train them with :data:`RECIPE`.

Shapes: ``B`` completions, ``L`` tokens, ``S`` step boundaries (padded per batch).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..lm.generation import build_prompts, generate_texts, sample
from ..lm.models import save_model
from ..runtime import Profile
from ..world import MAX_STEPS, SEPARATORS, Problem, completion_text, sample_problems, score, step_boundaries
from ..world.rewards import process_rewards
from .model import encode, load_reward_model, rewards_of, rm_texts, score_completions
from .train import train_on_indices

AGGREGATIONS = ("min", "last", "product", "mean")


def _token_index(offsets: list[tuple[int, int]], char: int) -> int:
    """The token whose character span holds ``char`` (the first one starting after it, if none does)."""
    for i, (a, b) in enumerate(offsets):
        if a <= char < b or a > char:
            return i
    return len(offsets) - 1


def prm_batch(
    tok: PreTrainedTokenizerBase, problems: Sequence[Problem], completions: Sequence[Any],
    labels: Sequence[Sequence[float]] | None = None,
) -> dict[str, torch.Tensor]:
    """Encode ``rm_texts`` right-padded, with the token positions of every step boundary.

    Returns ``input_ids``/``attention_mask`` ``[B, L]``, ``step_pos`` ``[B, S]`` (0 where padded), ``step_mask``
    ``[B, S]`` (1 for a real step) and, with ``labels`` (``B`` lists, one float per step), ``step_labels`` ``[B, S]``.
    Raises ``ValueError`` when a completion's labels and steps differ in number.
    """
    texts = rm_texts(tok, problems, completions)
    prompts = build_prompts(tok, problems)
    enc = tok(texts, return_offsets_mapping=True, add_special_tokens=False)
    rows, lens = [], []
    for i, (p, c) in enumerate(zip(prompts, completions)):
        chars = [len(p) + b for b in step_boundaries(c)]
        if labels is not None and len(labels[i]) != len(chars):
            raise ValueError(f"completion {i} has {len(chars)} steps but {len(labels[i])} labels: {completion_text(c)!r}")
        rows.append([_token_index(enc["offset_mapping"][i], ch) for ch in chars])
        lens.append(len(enc["input_ids"][i]))
    B, L, S = len(texts), max(lens), max([len(r) for r in rows] + [1])
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    ids = torch.full((B, L), pad, dtype=torch.long)
    att = torch.zeros(B, L, dtype=torch.long)
    pos = torch.zeros(B, S, dtype=torch.long)
    smask = torch.zeros(B, S)
    for i, (row, n) in enumerate(zip(rows, lens)):
        ids[i, :n] = torch.tensor(enc["input_ids"][i])
        att[i, :n] = 1
        pos[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        smask[i, : len(row)] = 1
    out = {"input_ids": ids, "attention_mask": att, "step_pos": pos, "step_mask": smask}
    if labels is not None:
        lab = torch.zeros(B, S)
        for i, ls in enumerate(labels):
            lab[i, : len(ls)] = torch.tensor([float(x) for x in ls])
        out["step_labels"] = lab
    return out


def token_logits(model: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """``[B, L]``: the scalar head ``model.score`` applied to the backbone's last hidden state at *every* position
    (the sequence-classification model reads only the last one)."""
    device = next(model.parameters()).device
    h = model.model(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device)).last_hidden_state
    return model.score(h).squeeze(-1).float()


def step_logits(model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """``[B, S]`` PRM logits at the step boundaries of a :func:`prm_batch` (padding: arbitrary, see ``step_mask``)."""
    z = token_logits(model, batch["input_ids"], batch["attention_mask"])
    return z.gather(1, batch["step_pos"].to(z.device))


# ---------------------------------------------------------------------------------------------- losses
def orm_loss(logits: torch.Tensor, correct: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of ``[B]`` ORM logits against ``[B]`` 0/1 correctness (mean over the batch)."""
    if logits.shape != correct.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(correct.shape)} differ in shape")
    return F.binary_cross_entropy_with_logits(logits, correct.to(logits))


def prm_loss(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of ``[B, S]`` step logits against ``[B, S]`` labels in [0, 1] (soft labels allowed),
    averaged over the real steps (``mask`` 1) of the whole batch: every step weighs the same."""
    if not (logits.shape == labels.shape == mask.shape):
        raise ValueError(f"logits, labels and mask must share a shape: {tuple(logits.shape)}, {tuple(labels.shape)}, {tuple(mask.shape)}")
    m = mask.to(logits)
    per = F.binary_cross_entropy_with_logits(logits, labels.to(logits), reduction="none")
    return (per * m).sum() / m.sum().clamp(min=1)


# ---------------------------------------------------------------------------------------------- training
def _fit(model: PreTrainedModel, n: int, loss_of: Callable[[list[int]], torch.Tensor], steps: int, batch_size: int,
         lr: float, warmup: int, seed: int) -> list[float]:
    """:func:`~utils.reward_models.train.train_on_indices` (no weight decay), seeding torch first."""
    if n == 0:
        raise ValueError("no training examples")
    torch.manual_seed(seed)
    return train_on_indices(model, n, loss_of, steps, batch_size, lr, warmup, seed, weight_decay=0.0)


def train_orm(model: PreTrainedModel, tok: PreTrainedTokenizerBase, problems: Sequence[Problem], completions: Sequence[Any],
              correct: Sequence[float], steps: int, batch_size: int = 32, lr: float = 1e-3, warmup: int = 10,
              seed: int = 0) -> list[float]:
    """Train an ORM: :func:`orm_loss` of the last-token logit against each completion's 0/1 correctness."""
    if not (len(problems) == len(completions) == len(correct)):
        raise ValueError("problems, completions and correct must have the same length")
    y = torch.tensor([float(c) for c in correct])

    def loss_of(idx: list[int]) -> torch.Tensor:
        batch = encode(tok, rm_texts(tok, [problems[i] for i in idx], [completions[i] for i in idx]))
        z = rewards_of(model, batch)
        return orm_loss(z, y[idx].to(z.device))

    return _fit(model, len(y), loss_of, steps, batch_size, lr, warmup, seed)


def train_prm(model: PreTrainedModel, tok: PreTrainedTokenizerBase, problems: Sequence[Problem], completions: Sequence[Any],
              labels: Sequence[Sequence[float]], steps: int, batch_size: int = 32, lr: float = 1e-3, warmup: int = 10,
              seed: int = 0) -> list[float]:
    """Train a PRM: :func:`prm_loss` at the step boundaries against per-step labels (completions with no step
    are dropped: they carry no process label)."""
    if not (len(problems) == len(completions) == len(labels)):
        raise ValueError("problems, completions and labels must have the same length")
    keep = [i for i, ls in enumerate(labels) if len(ls)]

    def loss_of(idx: list[int]) -> torch.Tensor:
        j = [keep[i] for i in idx]
        b = prm_batch(tok, [problems[i] for i in j], [completions[i] for i in j], [labels[i] for i in j])
        z = step_logits(model, b)
        return prm_loss(z, b["step_labels"].to(z.device), b["step_mask"].to(z.device))

    return _fit(model, len(keep), loss_of, steps, batch_size, lr, warmup, seed)


# ---------------------------------------------------------------------------------------------- scoring
def _distinct(problems: Sequence[Problem], completions: Sequence[Any]) -> tuple[list[int], list[int]]:
    """``(first, where)``: the index of the first of each distinct (problem, completion) pair, and for every item
    the position of its pair in ``first`` (a best-of-N pool repeats many completions; each is scored once)."""
    seen: dict[tuple[str, str, str], int] = {}
    first, where = [], []
    for i, (p, c) in enumerate(zip(problems, completions)):
        key = (p.uid, p.prompt, completion_text(c))
        if key not in seen:
            seen[key] = len(first)
            first.append(i)
        where.append(seen[key])
    return first, where


@torch.no_grad()
def step_probabilities(model: PreTrainedModel, tok: PreTrainedTokenizerBase, problems: Sequence[Problem],
                       completions: Sequence[Any], batch_size: int = 128) -> list[list[float]]:
    """The PRM's probability that each step is good: ``B`` lists, one float per step (``[]``: no steps)."""
    if len(problems) != len(completions):
        raise ValueError(f"{len(problems)} problems but {len(completions)} completions")
    first, where = _distinct(problems, completions)
    probs, comps = [problems[i] for i in first], [completions[i] for i in first]
    was = model.training
    model.eval()
    out: list[list[float]] = []
    for s in range(0, len(probs), batch_size):
        b = prm_batch(tok, probs[s : s + batch_size], comps[s : s + batch_size])
        p = step_logits(model, b).sigmoid().cpu()
        out += [p[i, : int(b["step_mask"][i].sum())].tolist() for i in range(p.shape[0])]
    model.train(was)
    return [list(out[j]) for j in where]


def aggregate(step_probs: Sequence[Sequence[float]], how: str = "min") -> torch.Tensor:
    """``[B]`` one score per completion from its step probabilities: ``min`` (the weakest step, Lightman et al.),
    ``last`` (the final step's), ``product`` (all steps good, if independent) or ``mean``. No steps: 0."""
    if how not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {how!r}; choose one of {AGGREGATIONS}")
    fn = {"min": min, "last": lambda v: v[-1], "product": math.prod, "mean": lambda v: sum(v) / len(v)}[how]
    return torch.tensor([float(fn(list(v))) if len(v) else 0.0 for v in step_probs])


def prm_scores(model: PreTrainedModel, tok: PreTrainedTokenizerBase, problems: Sequence[Problem],
               completions: Sequence[Any], how: str = "min", batch_size: int = 128) -> torch.Tensor:
    """``[B]`` aggregated PRM scores (:func:`step_probabilities` then :func:`aggregate`)."""
    return aggregate(step_probabilities(model, tok, problems, completions, batch_size), how)


def orm_scores(model: PreTrainedModel, tok: PreTrainedTokenizerBase, problems: Sequence[Problem],
               completions: Sequence[Any], batch_size: int = 128) -> torch.Tensor:
    """``[B]`` the ORM's probability that each completion is correct (sigmoid of the last-token logit)."""
    if len(problems) != len(completions):
        raise ValueError(f"{len(problems)} problems but {len(completions)} completions")
    first, where = _distinct(problems, completions)
    s = score_completions(model, tok, [problems[i] for i in first], [completions[i] for i in first], batch_size)
    return s.sigmoid()[torch.tensor(where, dtype=torch.long)] if where else torch.zeros(0)


# ---------------------------------------------------------------------------------------------- labels
def exact_step_labels(problems: Sequence[Problem], completions: Sequence[Any]) -> list[list[float]]:
    """The solver's per-step labels (``process_rewards``): 1 = valid and the target still reachable."""
    return [process_rewards(p, c)[:MAX_STEPS] for p, c in zip(problems, completions)]


def step_prefixes(completion: Any) -> list[str]:
    """The completion cut after each step (its separator kept; the last step's cut before ``</think>``)."""
    text = completion_text(completion)
    return [text[: b + 1] if text[b] in SEPARATORS else text[:b] for b in step_boundaries(text)]


@dataclass
class MCLabels:
    """Monte-Carlo step labels. ``hard``/``soft``: ``B`` lists, one label per step (any / fraction of the ``k``
    rollouts from that step's prefix reach a correct answer); ``rollouts``: continuations sampled (one set of ``k``
    per distinct prefix); ``rollouts_naive``: ``k`` x the number of steps, without sharing duplicate prefixes."""

    hard: list[list[float]]
    soft: list[list[float]]
    rollouts: int
    k: int
    rollouts_naive: int


@torch.no_grad()
def mc_step_labels(policy: PreTrainedModel, tok: PreTrainedTokenizerBase, problems: Sequence[Problem],
                   completions: Sequence[Any], k: int, max_new_tokens: int = 64, temperature: float = 1.0,
                   batch_size: int = 256, seed: int = 0) -> MCLabels:
    """Math-Shepherd's labels: ``k`` policy rollouts from each step prefix, scored by ``utils.world.score``."""
    if k < 1:
        raise ValueError(f"need k >= 1 rollouts per step, got {k}")
    prompts = build_prompts(tok, problems)
    jobs = [(i, pre) for i, c in enumerate(completions) for pre in step_prefixes(c)]
    # identical (problem, prefix) pairs share one set of rollouts: the same distribution, sampled once
    first: dict[str, tuple[int, str]] = {}
    for i, pre in jobs:
        first.setdefault(prompts[i] + pre, (i, pre))
    unique = list(first.items())
    rate: dict[str, list[float]] = {}
    if unique:
        s = sample(policy, tok, [key for key, _ in unique], n=k, max_new_tokens=max_new_tokens,
                   temperature=temperature, batch_size=batch_size, seed=seed)
        for j, (key, (i, pre)) in enumerate(unique):
            rate[key] = [score(problems[i], pre + s.texts[j * k + r]) for r in range(k)]
    hard: list[list[float]] = [[] for _ in completions]
    soft: list[list[float]] = [[] for _ in completions]
    for i, pre in jobs:
        h = rate[prompts[i] + pre]
        hard[i].append(float(max(h)))
        soft[i].append(sum(h) / k)
    return MCLabels(hard, soft, len(unique) * k, k, len(jobs) * k)


# ---------------------------------------------------------------------------------------------- the chapter's recipe
#: chapter 06's recipe per profile (read by :meth:`utils.runtime.Profile.recipe`): training problems per level,
#: samples per problem, MC rollouts per step, steps
RECIPE = {
    "smoke": {"levels": (3, 4), "problems": 8, "samples": 2, "k": 2, "steps": 3, "batch_size": 8, "lr": 2e-3, "max_new_tokens": 48},
    "cpu": {"levels": (3, 4), "problems": 40, "samples": 4, "k": 4, "steps": 100, "batch_size": 16, "lr": 2e-3, "max_new_tokens": 64},
    "gpu": {"levels": (3, 4), "problems": 400, "samples": 8, "k": 8, "steps": 600, "batch_size": 32, "lr": 1e-3, "max_new_tokens": 64},
}


@dataclass
class TrainingData:
    """Sampled policy completions on training problems, with their outcome and step labels: ``problems`` holds one
    problem per completion (row ``i``'s)."""

    problems: list[Problem]
    completions: list[str]
    correct: list[float]
    exact: list[list[float]]
    mc: MCLabels | None = None


def training_data(policy: PreTrainedModel, tok: PreTrainedTokenizerBase, profile: Profile, with_mc: bool = True,
                  seed: int = 0) -> TrainingData:
    """The recipe's data: ``samples`` completions (T = 1) of the policy per training problem of each level, scored,
    labelled exactly and (``with_mc``) by Monte-Carlo rollouts."""
    r = profile.recipe(RECIPE)
    probs = [p for lvl in r["levels"] for p in sample_problems("countdown", lvl, r["problems"], split="train", seed=seed)]
    texts = generate_texts(policy, tok, probs, r["samples"], 1.0, r["max_new_tokens"], seed=seed)
    problems = [p for p, ts in zip(probs, texts) for _ in ts]
    completions = [t for ts in texts for t in ts]
    data = TrainingData(problems, completions, [score(p, c) for p, c in zip(problems, completions)],
                        exact_step_labels(problems, completions))
    if with_mc:
        data.mc = mc_step_labels(policy, tok, problems, completions, r["k"], r["max_new_tokens"] - 16, seed=seed + 1)
    return data


def _load_or_train(profile: Profile, name: str, train: Callable[[PreTrainedModel, PreTrainedTokenizerBase, TrainingData], Any],
                   with_mc: bool, seed: int) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    folder: Path = profile.model_dir(name)
    if (folder / "config.json").exists():
        return load_reward_model(str(folder), device=profile.device, seed=seed)
    from ..lm.models import load_model

    policy, ptok = load_model("tiny-sft", device=profile.device)
    data = training_data(policy, ptok, profile, with_mc=with_mc, seed=seed)
    model, tok = load_reward_model("tiny-sft", device=profile.device, seed=seed)
    train(model, tok, data)
    save_model(model, tok, folder)
    return model, tok


def course_orm(profile: Profile, name: str = "orm-06", seed: int = 0) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Chapter 06's ORM: loaded from ``profile.model_dir(name)``, else trained with :data:`RECIPE` and saved there."""
    r = profile.recipe(RECIPE)
    return _load_or_train(profile, name, lambda m, t, d: train_orm(m, t, d.problems, d.completions, d.correct, r["steps"],
                                                             r["batch_size"], r["lr"], seed=seed),
                          with_mc=False, seed=seed)


def course_prm(profile: Profile, labels: str = "exact", seed: int = 0) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Chapter 06's PRM trained on ``labels="exact"`` (``prm-06``) or Monte-Carlo hard labels (``"mc"``,
    ``prm-mc-06``): loaded if saved in this profile, else trained with :data:`RECIPE` and saved."""
    if labels not in ("exact", "mc"):
        raise ValueError(f"labels must be 'exact' or 'mc', got {labels!r}")
    r = profile.recipe(RECIPE)

    def train(m: PreTrainedModel, t: PreTrainedTokenizerBase, d: TrainingData) -> Any:
        lab = d.exact if labels == "exact" else d.mc.hard  # type: ignore[union-attr]
        return train_prm(m, t, d.problems, d.completions, lab, r["steps"], r["batch_size"], r["lr"], seed=seed)

    return _load_or_train(profile, "prm-06" if labels == "exact" else "prm-mc-06", train, with_mc=labels == "mc", seed=seed)
