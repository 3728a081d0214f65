"""Supervised fine-tuning loops (survey §4): the from-scratch step with gradient accumulation, and SFT
on a list of conversations.

* :func:`sft_step` / :func:`train_sft` - chapter 02's plain-PyTorch SFT: AdamW, warm-up + cosine, micro-
  batches whose summed losses are divided by the token count of the *whole* batch (what TRL does);
* :func:`fine_tune` - SFT on conversations drawn epoch by epoch, through :func:`utils.lm.training.train_lm`
  (chapters 01, 03, 04 use it for cold starts, distillation and rejection-sampling fine-tuning);
* :func:`problem_batches` - ``step -> batch`` over problems for :func:`utils.lm.training.train_lm` (chapter 04);
* :func:`clone` - an independent copy of a model to fine-tune.

The two loops order their data differently (a seeded ``randperm`` vs reshuffled epochs), so the same
settings give close but not identical runs; both put the loss on every assistant turn (:func:`utils.lm.sft_batch`).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable, Literal, Sequence

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..checkpoint import Checkpoint, as_checkpoint, data_checksum
from ..lm.batches import Conversation, MaskMode, Message, sft_batch
from ..lm.logprobs import IGNORE, loss_sum_and_count, sequence_nll
from ..lm.training import cosine_schedule, epoch_batches, shuffled, train_lm
from ..world import Problem

Average = Literal["token", "sequence"]


def clone(model: PreTrainedModel) -> PreTrainedModel:
    """An independent copy (weights and all) to fine-tune while keeping the original."""
    return copy.deepcopy(model)


def _sequence_mean_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum over the rows of each row's mean token NLL (rows without loss tokens add nothing)."""
    nll, n = sequence_nll(logits, labels)
    return (nll / n.clamp(min=1)).sum()


def sft_step(
    model: PreTrainedModel,
    opt: torch.optim.Optimizer,
    micro_batches: Sequence[dict[str, torch.Tensor]],
    clip: float | None = 1.0,
    average: Average = "token",
) -> float:
    """One optimizer step over ``micro_batches`` (gradient accumulation), returning the token-mean loss.

    Each micro-batch's summed NLL is divided by the number of loss tokens in *all* micro-batches, so the
    accumulated gradient equals the gradient of one big batch's token-mean loss - what ``transformers``'
    Trainer does with ``num_items_in_batch``. (Averaging per-micro-batch means instead would weight
    tokens of short micro-batches more.)

    ``average="sequence"``: the other objective (:func:`utils.lm.logprobs.sequence_mean_loss`) - each
    conversation's mean token loss, averaged over the conversations of *all* micro-batches (rows without
    loss tokens are skipped), so a short answer weighs as much as a long one.
    """
    if average not in ("token", "sequence"):
        raise ValueError(f"average must be 'token' or 'sequence', got {average!r}")
    device = next(model.parameters()).device
    if average == "token":
        total = sum(int((mb["labels"][:, 1:] != IGNORE).sum()) for mb in micro_batches)
    else:
        total = sum(int(((mb["labels"][:, 1:] != IGNORE).sum(-1) > 0).sum()) for mb in micro_batches)
    opt.zero_grad(set_to_none=True)
    loss_value = 0.0
    for mb in micro_batches:
        mb = {k: v.to(device) for k, v in mb.items()}
        labels = mb.pop("labels")
        logits = model(**mb).logits
        s = loss_sum_and_count(logits, labels)[0] if average == "token" else _sequence_mean_sum(logits, labels)
        loss = s / max(total, 1)
        loss.backward()
        loss_value += float(loss.detach())
    if clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    return loss_value


def train_sft(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    convs: Sequence[Sequence[Message]],
    steps: int,
    batch_size: int = 32,
    lr: float = 1e-3,
    warmup: int = 20,
    mode: MaskMode = "assistant",
    grad_accum: int = 1,
    max_length: int | None = None,
    weight_decay: float = 0.0,
    clip: float | None = 1.0,
    seed: int = 0,
    desc: str = "SFT",
    checkpoint: "str | Path | Checkpoint | None" = None,
    save_every: int = 50,
    average: Average = "token",
) -> list[float]:
    """Supervised fine-tuning from scratch: AdamW, warm-up + cosine schedule, loss per :func:`sft_batch`.

    ``checkpoint``: a file to save to every ``save_every`` steps and to resume from (:mod:`utils.checkpoint`).
    ``average``: ``"token"`` (default, TRL's objective) or ``"sequence"`` (each conversation's mean first, see
    :func:`sft_step`).

    Walks through ``convs`` in a seeded shuffled order (several epochs if needed); each step uses
    ``batch_size`` conversations split into ``grad_accum`` micro-batches. Returns the loss of every step.
    The model is left in eval mode.
    """
    if batch_size % grad_accum:
        raise ValueError(f"batch_size {batch_size} must be divisible by grad_accum {grad_accum}")
    g = torch.Generator().manual_seed(seed)
    order: list[int] = []
    while len(order) < steps * batch_size:
        order += torch.randperm(len(convs), generator=g).tolist()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, betas=(0.9, 0.95), weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: cosine_schedule(s, steps, warmup))
    settings = dict(loop="train_sft", data=data_checksum(convs), steps=steps, batch_size=batch_size, lr=lr, warmup=warmup, mode=mode,
                    grad_accum=grad_accum, max_length=max_length, weight_decay=weight_decay, clip=clip, seed=seed)
    if average != "token":  # only then: checkpoints of token-mean runs keep their fingerprint
        settings["average"] = average
    ckpt = as_checkpoint(checkpoint, settings, save_every)
    start, losses = ckpt.resume(model, opt, sched) if ckpt else (0, [])
    model.train()
    micro = batch_size // grad_accum
    bar = tqdm(range(start, steps), desc=desc, mininterval=2, initial=start, total=steps)
    for step in bar:
        idx = order[step * batch_size : (step + 1) * batch_size]
        mbs = [sft_batch(tok, [convs[i] for i in idx[j : j + micro]], mode, max_length) for j in range(0, batch_size, micro)]
        losses.append(sft_step(model, opt, mbs, clip, average))
        sched.step()
        if ckpt:
            ckpt.save_if_due(step + 1, steps, model, opt, sched, losses)
        if step % 10 == 0 or step == steps - 1:
            bar.set_postfix(loss=f"{sum(losses[-10:]) / len(losses[-10:]):.3f}")
    model.eval()
    return losses


def fine_tune(
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
    """Fine-tune ``model`` in place on ``conversations`` (loss on every assistant turn; real models get the
    course's system prompt, as at evaluation time: :func:`utils.lm.batches.sft_batch` with ``system=True``).

    ``steps`` AdamW steps of ``batch_size`` conversations drawn epoch by epoch (:func:`epoch_batches`),
    cosine learning rate with ``warmup`` (default: a tenth of the steps, at most 20). Returns the
    per-step losses.
    """
    if not conversations:
        raise ValueError("fine_tune() needs at least one conversation")
    pick = epoch_batches(len(conversations), batch_size, seed)
    warmup = min(20, steps // 10 + 1) if warmup is None else warmup
    data = dict(data=data_checksum(conversations), batch_size=batch_size, seed=seed, max_length=max_length)
    return train_lm(model, lambda s: sft_batch(tok, [conversations[i] for i in pick(s)], max_length=max_length, system=True), steps,
                    lr=lr, warmup=warmup, desc=desc, checkpoint=checkpoint, data=data)


def problem_batches(tok: PreTrainedTokenizerBase, problems: Sequence[Problem], batch_size: int, seed: int = 0,
                cot: bool = True) -> Callable[[int], dict[str, torch.Tensor]]:
    """``batches(step)`` for :func:`utils.lm.training.train_lm`: epochs over ``problems`` in a fresh shuffle,
    loss on the assistant's tokens only.

    Batches come from :func:`utils.lm.batches.sft_batch` with ``system=True``: a real model (SmolLM2) gets the
    course's system prompt, as at evaluation time; the tiny model none.
    """
    problems = list(problems)
    per_epoch = max(1, len(problems) // batch_size)

    def batches(step: int) -> dict[str, torch.Tensor]:
        epoch, i = divmod(step, per_epoch)
        chunk = shuffled(problems, seed + epoch)[i * batch_size:(i + 1) * batch_size]
        return sft_batch(tok, [p.messages(cot=cot) for p in chunk], system=True)

    return batches
