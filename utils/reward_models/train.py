"""Training reward models on comparisons (pairs: Bradley-Terry; rankings: Plackett-Luce), and the course's
shared reward model.

:func:`course_reward_model` is how chapters 07-08 get chapter 05's reward model: it loads
``profile.model_dir("rm-05")`` when chapter 05 saved one in this profile, else trains one with :data:`RECIPE`
(under a minute for the tiny model on one CPU thread), so every notebook also runs on its own.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..lm.models import save_model
from ..lm.training import checkpointed, cosine_schedule
from ..runtime import Profile
from ..world import Problem, sample_problems
from ..world.preferences import KINDS, PreferencePair, candidate, preference_pairs, true_reward
from .losses import bradley_terry_loss, plackett_luce_loss
from .model import encode, load_reward_model, rewards_of, rm_texts


def pair_batch(tok: PreTrainedTokenizerBase, pairs: Sequence[PreferencePair], max_length: int = 256) -> dict[str, torch.Tensor]:
    """Chosen rows then rejected rows in one ``[2B, L]`` batch (TRL's layout): ``input_ids``, ``attention_mask``."""
    probs = [p.problem for p in pairs]
    texts = rm_texts(tok, probs, [p.chosen for p in pairs]) + rm_texts(tok, probs, [p.rejected for p in pairs])
    return encode(tok, texts, max_length)


# ---------------------------------------------------------------------------------------------- rankings
@dataclass(frozen=True)
class Ranking:
    """A labelled ranking of ``K`` responses to one problem, **best first** by the (noisy) annotator.

    ``rewards`` are the hidden true rewards of ``completions``, in the same order.
    """

    problem: Problem
    completions: tuple[str, ...]
    rewards: tuple[float, ...]


def preference_rankings(problems: Sequence[Problem], k: int = 4, tau: float = 0.2, seed: int = 0) -> list[Ranking]:
    """One ranking of ``k`` candidates (distinct kinds, distinct true rewards) per problem, drawn from the
    Plackett-Luce annotator at temperature ``tau``: sort by ``r / tau + Gumbel noise`` (the Gumbel-max form of
    Plackett-Luce sampling). For ``k = 2`` it is :func:`utils.world.preferences.preference_pairs`'s
    Bradley-Terry annotator, ``P(a > b) = sigmoid((r_a - r_b) / tau)``. Problems with fewer than ``k``
    distinct rewards among their tries are skipped.
    """
    if tau <= 0:
        raise ValueError("tau must be positive")
    if not 2 <= k <= len(KINDS):
        raise ValueError(f"k must be in 2..{len(KINDS)}, got {k}")
    rng = random.Random(seed)
    out: list[Ranking] = []
    for p in problems:
        for _ in range(20):
            texts = [candidate(p, kind, rng) for kind in rng.sample(KINDS, k)]
            rs = [true_reward(p, t) for t in texts]
            if min(abs(a - b) for i, a in enumerate(rs) for b in rs[i + 1 :]) > 1e-9:
                break
        else:
            continue
        keys = [r / tau - math.log(-math.log(max(rng.random(), 1e-300))) for r in rs]
        order = sorted(range(k), key=lambda i: -keys[i])
        out.append(Ranking(p, tuple(texts[i] for i in order), tuple(rs[i] for i in order)))
    return out


def ranking_pairs(rankings: Sequence[Ranking]) -> list[PreferencePair]:
    """The ``K(K-1)/2`` pairs each ranking implies (earlier = chosen), as :class:`PreferencePair` s."""
    return [PreferencePair(r.problem, r.completions[i], r.completions[j], r.rewards[i], r.rewards[j])
            for r in rankings for i in range(len(r.completions)) for j in range(i + 1, len(r.completions))]


def ranking_batch(tok: PreTrainedTokenizerBase, rankings: Sequence[Ranking], max_length: int = 256) -> dict[str, torch.Tensor]:
    """``[K*B, L]`` rank-major rows: every ranking's first response, then every second one, ... (rewards come
    back as ``[K*B]``; ``.view(K, B).T`` gives the ``[B, K]`` best-first scores :func:`plackett_luce_loss` takes).
    All rankings must have the same ``K``."""
    ks = {len(r.completions) for r in rankings}
    if len(ks) != 1:
        raise ValueError(f"rankings of different lengths in one batch: {sorted(ks)}")
    (k,) = ks
    probs = [r.problem for r in rankings]
    texts = [t for i in range(k) for t in rm_texts(tok, probs, [r.completions[i] for r in rankings])]
    return encode(tok, texts, max_length)


# ---------------------------------------------------------------------------------------------- training
def train_on_indices(model: PreTrainedModel, n_items: int, loss_of: Callable[[list[int]], torch.Tensor], steps: int,
           batch_size: int, lr: float, warmup: int, seed: int, weight_decay: float,
           micro_batch: int | None = None, gradient_checkpointing: bool = False) -> list[float]:
    """AdamW with a cosine schedule over shuffled epochs of ``n_items``; ``loss_of(indices)`` is one batch's loss.

    The one loop behind every reward model of the package (Bradley-Terry, Plackett-Luce, ORM, PRM).
    ``micro_batch``: items per forward/backward pass (gradient accumulation, to bound activation memory); each
    chunk's loss is weighted by its share of the batch, which gives the full batch's gradient exactly when
    ``loss_of`` is a mean over items (Bradley-Terry, Plackett-Luce). ``None``: the whole batch in one pass.
    ``gradient_checkpointing``: recompute layer activations in the backward pass (:func:`utils.lm.training.checkpointed`)."""
    if micro_batch is not None and micro_batch < 1:
        raise ValueError(f"micro_batch must be >= 1 or None, got {micro_batch}")
    rng = random.Random(seed)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: cosine_schedule(s, steps, warmup))
    order: list[int] = []
    losses = []
    model.train()
    with checkpointed(model, gradient_checkpointing):
        for _ in range(steps):
            while len(order) < batch_size:  # a set smaller than a batch repeats within it: every step sees batch_size items
                more = list(range(n_items))
                rng.shuffle(more)
                order += more
            idx, order = order[:batch_size], order[batch_size:]
            opt.zero_grad(set_to_none=True)
            chunk = micro_batch or batch_size
            total = 0.0
            for s in range(0, batch_size, chunk):
                part = idx[s : s + chunk]
                loss = loss_of(part) * (len(part) / batch_size)
                loss.backward()
                total += loss.item()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(total)
    model.zero_grad(set_to_none=True)   # the last step's .grad, unused (as in train_lm)
    model.eval()
    return losses


def train_reward_model(
    model: PreTrainedModel, tok: PreTrainedTokenizerBase, pairs: Sequence[PreferencePair], steps: int,
    batch_size: int = 32, lr: float = 1e-3, warmup: int = 10, seed: int = 0, weight_decay: float = 0.0,
    max_length: int = 256, center_coefficient: float | None = None, micro_batch: int | None = None,
) -> list[float]:
    """Minimise :func:`bradley_terry_loss` with AdamW over shuffled epochs of ``pairs``; returns per-step losses.

    ``batch_size`` pairs (``2 * batch_size`` sequences) per step, ``micro_batch`` pairs per forward/backward pass
    (same gradient, less memory); ``center_coefficient`` as in TRL's ``center_rewards_coefficient``."""
    if not pairs:
        raise ValueError("train_reward_model needs at least one preference pair")

    def loss_of(idx: list[int]) -> torch.Tensor:
        r_w, r_l = rewards_of(model, pair_batch(tok, [pairs[i] for i in idx], max_length)).chunk(2)
        return bradley_terry_loss(r_w, r_l, center_coefficient=center_coefficient)

    return train_on_indices(model, len(pairs), loss_of, steps, batch_size, lr, warmup, seed, weight_decay, micro_batch)


def train_plackett_luce(
    model: PreTrainedModel, tok: PreTrainedTokenizerBase, rankings: Sequence[Ranking], steps: int,
    batch_size: int = 8, lr: float = 1e-3, warmup: int = 10, seed: int = 0, weight_decay: float = 0.0,
    max_length: int = 256, micro_batch: int | None = None,
) -> list[float]:
    """Minimise :func:`plackett_luce_loss` over shuffled epochs of equal-length ``rankings``
    (``batch_size`` rankings, ``K * batch_size`` sequences, per step); returns per-step losses."""
    if not rankings:
        raise ValueError("train_plackett_luce needs at least one ranking")
    k = len(rankings[0].completions)

    def loss_of(idx: list[int]) -> torch.Tensor:
        r = rewards_of(model, ranking_batch(tok, [rankings[i] for i in idx], max_length))
        return plackett_luce_loss(r.view(k, len(idx)).T)

    return train_on_indices(model, len(rankings), loss_of, steps, batch_size, lr, warmup, seed, weight_decay, micro_batch)


# ---------------------------------------------------------------------------------------------- evaluation
@torch.no_grad()
@torch.no_grad()  # without it a 128-pair batch keeps its autograd graph alive: many GiB of activations for SmolLM2
def pair_margins(model: PreTrainedModel, tok: PreTrainedTokenizerBase, pairs: Sequence[PreferencePair],
                 batch_size: int = 128, max_length: int = 256) -> torch.Tensor:
    """``[N]`` predicted margins ``r(x, chosen) - r(x, rejected)`` (on the CPU); ``sigmoid`` of it is the
    model's ``P(chosen > rejected)``."""
    out = []
    for s in range(0, len(pairs), batch_size):
        r_w, r_l = rewards_of(model.eval(), pair_batch(tok, pairs[s : s + batch_size], max_length)).chunk(2)
        out.append((r_w - r_l).cpu())
    return torch.cat(out) if out else torch.zeros(0)


def true_margins(pairs: Sequence[PreferencePair]) -> torch.Tensor:
    """``[N]`` hidden true-reward margins ``r*(chosen) - r*(rejected)``."""
    return torch.tensor([p.chosen_reward - p.rejected_reward for p in pairs], dtype=torch.float32)


def margin_accuracy(margins: torch.Tensor, pairs: Sequence[PreferencePair], truth: bool = True) -> float:
    """Fraction of ``pairs`` whose predicted ``margins`` ``[N]`` have the sign of the true margin
    (``truth=True``; ties skipped) or are positive (agree with the label)."""
    if margins.shape != (len(pairs),):
        raise ValueError(f"margins of shape {tuple(margins.shape)} for {len(pairs)} pairs")
    if not truth:
        return float((margins > 0).float().mean()) if len(pairs) else 0.0
    t = true_margins(pairs)
    keep = t != 0
    return float(((margins * t.sign())[keep] > 0).float().mean()) if keep.any() else 0.0


# ---------------------------------------------------------------------------------------------- the course RM
#: chapter 05's recipe for the shared reward model, per profile (read by :meth:`utils.runtime.Profile.recipe`):
#: Countdown-3 training problems (one pair each), annotator temperature, optimizer steps, pairs per step, learning rate, backbone (``None``: the profile's model).
#: cpu: 20 steps of 16 pairs reach held-out pairwise accuracy ~0.83 in ~10-20 s on one thread (chapter 05 measures it).
RECIPE: dict[str, dict[str, Any]] = {
    "smoke": dict(n=32, tau=0.2, steps=4, batch_size=8, lr=3e-3, backbone="tiny-sft"),
    "cpu": dict(n=640, tau=0.2, steps=20, batch_size=16, lr=3e-3, backbone="tiny-sft"),
    # 852 distinct problems; one 16-pair pass of SmolLM2 in fp32 (~4.5 GiB of activations) fits a T4: no micro-batches
    "gpu": dict(n=800, tau=0.2, steps=200, batch_size=16, micro_batch=None, lr=2e-5, backbone=None),
    # a gpu dry run: the gpu backbone (the profile's model) for 2 steps of 2 pairs, a CPU's worth
    "dry_run": dict(n=32, tau=0.2, steps=2, batch_size=2, lr=3e-3, backbone=None),
}


def recipe_pairs(profile: Profile, seed: int = 0) -> list[PreferencePair]:
    """The training pairs of :data:`RECIPE` (one per Countdown-3 training problem)."""
    r = profile.recipe(RECIPE)
    return preference_pairs(sample_problems("countdown", 3, r["n"], split="train", seed=seed), 1, tau=r["tau"], seed=seed)


def course_reward_model(profile: Profile, name: str = "rm-05", seed: int = 0, retrain: bool = False
                        ) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Chapter 05's reward model: loaded from ``profile.model_dir(name)`` if saved there (and not ``retrain``), else
    trained with :data:`RECIPE` on Countdown-3 preference pairs (backbone: tiny-sft on cpu, the profile's model
    on gpu) and saved there."""
    folder: Path = profile.model_dir(name)
    if (folder / "config.json").exists() and not retrain:
        return load_reward_model(str(folder), device=profile.device, seed=seed)
    r = profile.recipe(RECIPE)
    model, tok = load_reward_model(r["backbone"] or profile.model, device=profile.device, seed=seed)
    train_reward_model(model, tok, recipe_pairs(profile, seed), steps=r["steps"], batch_size=r["batch_size"], lr=r["lr"],
                       warmup=max(1, r["steps"] // 10), seed=seed, micro_batch=r.get("micro_batch"))
    save_model(model, tok, folder)
    return model, tok
