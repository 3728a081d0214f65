"""Training a Bradley-Terry reward model on preference pairs, and the course's shared reward model.

:func:`course_reward_model` is how chapters 07-08 get chapter 05's reward model: it loads
``P.model_dir("rm-05")`` when chapter 05 saved one in this profile, else trains one with the same recipe
(seconds for the tiny model), so every notebook also runs on its own.
"""
from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..lm.training import cosine_schedule
from ..runtime import Profile
from ..world import sample_problems
from ..world.preferences import PreferencePair, preference_pairs
from .losses import bradley_terry_loss
from .model import encode, load_reward_model, rewards_of, rm_texts


def pair_batch(tok: PreTrainedTokenizerBase, pairs: Sequence[PreferencePair], max_length: int = 256) -> dict[str, torch.Tensor]:
    """Chosen rows then rejected rows in one ``[2B, L]`` batch (TRL's layout): ``input_ids``, ``attention_mask``."""
    probs = [p.problem for p in pairs]
    texts = rm_texts(tok, probs, [p.chosen for p in pairs]) + rm_texts(tok, probs, [p.rejected for p in pairs])
    return encode(tok, texts, max_length)


def train_reward_model(
    model: PreTrainedModel, tok: PreTrainedTokenizerBase, pairs: Sequence[PreferencePair], steps: int,
    batch_size: int = 32, lr: float = 1e-3, warmup: int = 10, seed: int = 0, weight_decay: float = 0.0,
) -> list[float]:
    """Minimise :func:`bradley_terry_loss` with AdamW over shuffled epochs of ``pairs``; returns per-step losses."""
    if not pairs:
        raise ValueError("train_reward_model needs at least one preference pair")
    rng = random.Random(seed)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: cosine_schedule(s, steps, warmup))
    order: list[int] = []
    losses = []
    model.train()
    for _ in range(steps):
        if len(order) < batch_size:
            more = list(range(len(pairs)))
            rng.shuffle(more)
            order += more
        idx, order = order[:batch_size], order[batch_size:]
        r = rewards_of(model, pair_batch(tok, [pairs[i] for i in idx]))
        r_w, r_l = r.chunk(2)
        loss = bradley_terry_loss(r_w, r_l)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    return losses


@torch.no_grad()
def pairwise_accuracy(model: PreTrainedModel, tok: PreTrainedTokenizerBase, pairs: Sequence[PreferencePair],
                      truth: bool = True, batch_size: int = 128) -> float:
    """Fraction of pairs the model orders correctly: by the **true** reward (``truth=True``; ties skipped)
    or by the (noisy) label."""
    hits, n = 0, 0
    for s in range(0, len(pairs), batch_size):
        chunk = pairs[s : s + batch_size]
        r_w, r_l = rewards_of(model.eval(), pair_batch(tok, chunk)).chunk(2)
        for p, a, b in zip(chunk, r_w.tolist(), r_l.tolist()):
            sign = 1.0 if not truth else math.copysign(1.0, p.chosen_reward - p.rejected_reward)
            if truth and p.chosen_reward == p.rejected_reward:
                continue
            hits += (a - b) * sign > 0
            n += 1
    return hits / max(n, 1)


#: chapter 05's recipe for the shared reward model, per profile: (train problems, pairs per problem, tau, steps)
RECIPE = {"smoke": (32, 2, 0.2, 4), "cpu": (600, 4, 0.2, 300), "gpu": (600, 4, 0.2, 300)}


def course_reward_model(P: Profile, name: str = "rm-05", seed: int = 0) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Chapter 05's reward model: loaded from ``P.model_dir(name)`` if saved there, else trained with
    :data:`RECIPE` on Countdown-3 preference pairs from the tiny-sft backbone and saved there."""
    folder: Path = P.model_dir(name)
    if (folder / "config.json").exists():
        return load_reward_model(str(folder), device=P.device, seed=seed)
    n, per, tau, steps = RECIPE["smoke" if P.extra.get("dry_run") else P.name]
    model, tok = load_reward_model("tiny-sft", device=P.device, seed=seed)
    pairs = preference_pairs(sample_problems("countdown", 3, n, split="train", seed=seed), per, tau=tau, seed=seed)
    train_reward_model(model, tok, pairs, steps=steps, seed=seed)
    folder.parent.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return model, tok
