"""The course's own training loop in plain PyTorch (:func:`train_lm`), its schedule and data order.

The loss is :func:`utils.lm.logprobs.mle_loss`; the batches come from :mod:`utils.lm.batches`.
Shapes: ``B`` batch, ``L`` sequence length, ``V`` vocabulary.
"""
from __future__ import annotations

import math
import random
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from ..checkpoint import Checkpoint, as_checkpoint
from .logprobs import mle_loss


@contextmanager
def checkpointed(model: PreTrainedModel, on: bool = True) -> Iterator[PreTrainedModel]:
    """Gradient checkpointing of ``model``'s layers inside the block (``on=False``: a no-op), then switched back off.

    Each layer's activations are recomputed in the backward pass instead of stored: the same gradients (up to float
    rounding order), about one more forward of compute, and activation memory of one layer instead of all. Used by
    the ``gpu`` profile where a real model's batches would not fit a 14 GiB budget. Needs a ``transformers`` model.
    """
    if not on:
        yield model
        return
    was = model.is_activation_checkpointing   # transformers 5 (pinned); the gradient_* names are deprecated aliases
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    try:
        yield model
    finally:
        if not was:
            model.activation_checkpointing_disable()


def cosine_schedule(step: int, total: int, warmup: int, floor: float = 0.1) -> float:
    """Learning-rate multiplier: linear warm-up, then cosine decay to ``floor``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def train_lm(
    model: PreTrainedModel,
    batches: Callable[[int], dict[str, torch.Tensor]],
    steps: int,
    lr: float = 1e-3,
    warmup: int = 20,
    weight_decay: float = 0.0,
    clip: float = 1.0,
    desc: str = "training",
    log_every: int = 10,
    checkpoint: "str | Path | Checkpoint | None" = None,
    save_every: int = 50,
    data: dict[str, Any] | None = None,
) -> list[float]:
    """Minimise :func:`mle_loss` for ``steps`` AdamW steps; ``batches(step)`` returns a batch dict.

    Returns the loss of every step (a list of floats) for plotting. With ``checkpoint`` (a file path), the
    run saves every ``save_every`` steps and resumes from there when called again with the same settings
    (:mod:`utils.checkpoint`); exact when ``batches(step)`` depends on ``step`` alone. ``batches`` is a
    function the fingerprint cannot see into: pass ``data`` (e.g. ``{"data": data_checksum(examples),
    "batch_size": 8}``) so that a checkpoint of a run on other data is not resumed.
    """
    device = next(model.parameters()).device
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay, betas=(0.9, 0.95))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: cosine_schedule(s, steps, warmup))
    settings = dict(loop="train_lm", steps=steps, lr=lr, warmup=warmup, weight_decay=weight_decay, clip=clip, **(data or {}))
    ckpt = as_checkpoint(checkpoint, settings, save_every)
    start, losses = ckpt.resume(model, opt, sched) if ckpt else (0, [])
    model.train()
    bar = tqdm(range(start, steps), desc=desc, mininterval=2, initial=start, total=steps)
    for step in bar:
        batch = {k: v.to(device) for k, v in batches(step).items()}
        labels = batch.pop("labels", batch["input_ids"])
        logits = model(**batch).logits
        loss = mle_loss(logits, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if ckpt:
            ckpt.save_if_due(step + 1, steps, model, opt, sched, losses)
        if step % log_every == 0 or step == steps - 1:
            bar.set_postfix(loss=f"{sum(losses[-log_every:]) / len(losses[-log_every:]):.3f}")
    model.zero_grad(set_to_none=True)   # the last step's .grad: one more copy of the weights, unused
    model.eval()
    return losses


def shuffled(items: Sequence, seed: int) -> list:
    """A shuffled copy (deterministic)."""
    out = list(items)
    random.Random(seed).shuffle(out)
    return out


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
