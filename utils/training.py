"""The course's own training pieces in plain PyTorch: MLE loss, packing, SFT batches, a small loop.

Shapes: ``B`` batch, ``L`` sequence length, ``V`` vocabulary.
"""
from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .checkpoint import Checkpoint, as_checkpoint

IGNORE = -100


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``log p(targets)`` from logits ``[B, L, V]`` and targets ``[B, L]`` -> ``[B, L]`` (fp32)."""
    return torch.gather(logits.float().log_softmax(-1), -1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)


def mle_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy ``-1/N sum_t log p(y_t | y_<t)`` (survey §2).

    ``logits``: ``[B, L, V]`` from inputs ``[B, L]``; ``labels``: ``[B, L]`` aligned with the inputs
    (position t is predicted from positions < t), ``-100`` where no loss is taken. Mean over counted tokens.
    """
    shift_logits = logits[:, :-1].float()
    shift_labels = labels[:, 1:]
    return F.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]), shift_labels.reshape(-1), ignore_index=IGNORE)


def pack_documents(tok: PreTrainedTokenizerBase, docs: Iterable[str], block_size: int, n_blocks: int) -> torch.Tensor:
    """Concatenate ``<bos>doc<bos>doc...`` and cut into ``[n_blocks, block_size]`` token blocks (pretraining)."""
    bos = tok.bos_token_id
    buf: list[int] = []
    blocks: list[list[int]] = []
    for doc in docs:
        buf.append(bos)
        buf.extend(tok(doc, add_special_tokens=False)["input_ids"])
        while len(buf) >= block_size:
            blocks.append(buf[:block_size])
            buf = buf[block_size:]
            if len(blocks) == n_blocks:
                return torch.tensor(blocks)
    raise ValueError(f"the document stream ended after {len(blocks)} of {n_blocks} blocks")


def chat_batch(
    tok: PreTrainedTokenizerBase, conversations: Sequence[list[dict[str, str]]], max_length: int | None = None
) -> dict[str, torch.Tensor]:
    """Tokenize chat conversations for SFT with loss on assistant tokens only (all assistant turns).

    Returns ``input_ids`` ``[B, L]`` (right-padded), ``attention_mask`` ``[B, L]`` and ``labels`` ``[B, L]``
    (``-100`` on system/user tokens, role markers and padding). Needs a chat template with
    ``{% generation %}`` markers (the tiny model's has them).
    """
    rows = [
        tok.apply_chat_template(c, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
        for c in conversations
    ]
    width = max(len(r["input_ids"]) for r in rows)
    if max_length:
        width = min(width, max_length)
    pad = tok.pad_token_id
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    att = torch.zeros((len(rows), width), dtype=torch.long)
    lab = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    for i, r in enumerate(rows):
        x = torch.tensor(r["input_ids"][:width])
        m = torch.tensor(r["assistant_masks"][:width], dtype=torch.bool)
        ids[i, : len(x)] = x
        att[i, : len(x)] = 1
        lab[i, : len(x)] = torch.where(m, x, torch.full_like(x, IGNORE))
    return {"input_ids": ids, "attention_mask": att, "labels": lab}


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
    model.eval()
    return losses


def shuffled(items: Sequence, seed: int) -> list:
    """A shuffled copy (deterministic)."""
    out = list(items)
    random.Random(seed).shuffle(out)
    return out
