"""Instruction and dialogue SFT (survey §4.1-4.2): data, loss masks, a from-scratch step, TRL glue.

What is here:

* **data** - :func:`conversations` and :func:`sft_dataset` turn world problems into chat conversations
  or a ``datasets.Dataset`` in TRL's two conversational formats (``messages`` or ``prompt``/``completion``);
  :func:`dialogue_problems` draws second turns of two-turn dialogues.
* **masks** - :func:`turn_spans` finds each assistant turn's tokens for *any* chat template that renders
  a conversation's prefix as a prefix of the whole (no ``{% generation %}`` markers needed);
  :func:`sft_batch` builds padded ``input_ids`` / ``attention_mask`` / ``labels`` with loss on all
  assistant turns, the last turn only, or every token; :func:`mask_text`, :func:`mask_html` and
  :func:`mask_rows` show which tokens carry loss.
* **loss** - :func:`token_mean_loss` (what ``utils.training.mle_loss`` and TRL compute: one mean over
  all loss tokens of the batch), :func:`sequence_mean_loss` (the per-sequence average it is *not*), and
  :func:`sft_step` / :func:`train_sft`, a plain-PyTorch SFT loop with correct gradient accumulation.
* **TRL** - :func:`sft_config` (CPU-safe ``SFTConfig`` defaults), :func:`trl_collate` and
  :func:`trl_loss` (the trainer's own loss on a batch, for agreement checks).

Shapes: ``B`` batch, ``L`` padded length, ``V`` vocabulary.
"""
from __future__ import annotations

import html
import tempfile
from pathlib import Path
from typing import Any, Literal, Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from . import world
from .checkpoint import Checkpoint, as_checkpoint, data_checksum
from .training import IGNORE, cosine_schedule
from .world import Problem

Message = dict[str, str]
Conversation = list[Message]
MaskMode = Literal["assistant", "last", "all"]


# ---------------------------------------------------------------------------------------------- data
def conversations(problems: Sequence[Problem], cot: bool = False, system: str | None = None) -> list[Conversation]:
    """Chat conversations ``[system?, (user, assistant)*, user, assistant]`` with reference answers.

    Dialogue problems (``meta["history"]``) become multi-turn conversations whose earlier assistant turns
    hold the earlier answers (see :meth:`utils.world.Problem.messages`).
    """
    return [p.messages(cot=cot, system=system) for p in problems]


def sft_dataset(
    problems: Sequence[Problem],
    fmt: Literal["messages", "prompt_completion"] = "messages",
    cot: bool = False,
    system: str | None = None,
):
    """A ``datasets.Dataset`` of conversations in one of TRL's conversational formats.

    ``"messages"``: one column ``messages`` (list of ``{"role", "content"}``); with a template that has
    ``{% generation %}`` markers, ``SFTConfig(assistant_only_loss=True)`` trains on every assistant turn.
    ``"prompt_completion"``: ``prompt`` (all messages but the last) and ``completion`` (the last assistant
    message); TRL then trains on the completion only - i.e. the *last* turn - and needs no markers.
    """
    from datasets import Dataset

    convs = conversations(problems, cot=cot, system=system)
    if fmt == "messages":
        return Dataset.from_dict({"messages": convs})
    if fmt == "prompt_completion":
        return Dataset.from_dict({"prompt": [c[:-1] for c in convs], "completion": [c[-1:] for c in convs]})
    raise ValueError(f"fmt must be 'messages' or 'prompt_completion', got {fmt!r}")


def is_dialogue(problem: Problem) -> bool:
    """True for the second turn of a dialogue (the problem carries an earlier turn in its history)."""
    return bool(problem.meta.get("history"))


def dialogue_problems(level: int, n: int, split: str = "train", seed: int = 0) -> list[Problem]:
    """``n`` distinct strings problems of one level that are second turns of two-turn dialogues.

    (:func:`utils.world.sample_problems` mixes single turns and dialogues about 70/30; this keeps the
    dialogues.) Deterministic for ``(level, split, seed)``.
    """
    out: list[Problem] = []
    draw = 4 * n + 20
    while len(out) < n:
        pool = world.sample_problems("strings", level, draw, split=split, seed=seed)
        out = [p for p in pool if is_dialogue(p)][:n]
        draw *= 2
        if draw > 200 * n + 10_000:
            raise ValueError(f"found only {len(out)} dialogue problems at level {level} in {split}")
    return out


# ---------------------------------------------------------------------------------------------- masks
def _ids(tok: PreTrainedTokenizerBase, messages: Sequence[Message], add_generation_prompt: bool = False) -> list[int]:
    if not messages:
        return []
    enc = tok.apply_chat_template(list(messages), tokenize=True, return_dict=True, add_generation_prompt=add_generation_prompt)
    return list(enc["input_ids"])


def turn_spans(tok: PreTrainedTokenizerBase, messages: Sequence[Message]) -> tuple[list[int], list[tuple[int, int]]]:
    """Token ids of the whole conversation and the ``[start, end)`` span of every assistant turn.

    The span of assistant message ``i`` runs from the end of ``messages[:i]`` rendered *with* the
    generation prompt (so the role marker ``<|assistant|>`` / ``<|im_start|>assistant\\n`` is excluded,
    it is part of the prompt) to the end of ``messages[:i+1]`` (so the end-of-turn token is included -
    the model must learn to stop). This works for any template whose rendering of a conversation's
    prefix is a token prefix of the whole; a ``ValueError`` says so when it is not.
    """
    full = _ids(tok, messages)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        start_ids = _ids(tok, messages[:i], add_generation_prompt=True)
        end_ids = _ids(tok, messages[: i + 1])
        if full[: len(start_ids)] != start_ids or full[: len(end_ids)] != end_ids:
            raise ValueError(
                "this chat template does not render a conversation's prefix as a prefix of the whole "
                f"(assistant turn {i}); use {{% generation %}} markers (return_assistant_tokens_mask) instead"
            )
        spans.append((len(start_ids), len(end_ids)))
    return full, spans


def loss_mask(tok: PreTrainedTokenizerBase, messages: Sequence[Message], mode: MaskMode = "assistant") -> tuple[list[int], list[int]]:
    """``(input_ids, mask)`` for one conversation; ``mask[t] = 1`` where token ``t`` carries loss.

    ``mode``: ``"assistant"`` every assistant turn (dialogue SFT, TRL's ``assistant_only_loss``),
    ``"last"`` the final assistant turn only (TRL's prompt-completion ``completion_only_loss``),
    ``"all"`` every token (plain language modelling on the rendered chat).
    """
    ids, spans = turn_spans(tok, messages)
    if mode == "all":
        return ids, [1] * len(ids)
    if mode not in ("assistant", "last"):
        raise ValueError(f"mode must be 'assistant', 'last' or 'all', got {mode!r}")
    chosen = spans[-1:] if mode == "last" else spans
    mask = [0] * len(ids)
    for a, b in chosen:
        mask[a:b] = [1] * (b - a)
    return ids, mask


def sft_batch(
    tok: PreTrainedTokenizerBase,
    convs: Sequence[Sequence[Message]],
    mode: MaskMode = "assistant",
    max_length: int | None = None,
) -> dict[str, torch.Tensor]:
    """Right-padded SFT batch for any prefix-preserving chat template.

    Returns ``input_ids`` ``[B, L]``, ``attention_mask`` ``[B, L]`` and ``labels`` ``[B, L]`` (the token id
    where the token carries loss, ``-100`` elsewhere, padding included). With the tiny tokenizer and
    ``mode="assistant"`` this equals :func:`utils.training.chat_batch`, which reads the template's
    ``{% generation %}`` markers instead.
    """
    rows = [loss_mask(tok, c, mode) for c in convs]
    width = max(len(ids) for ids, _ in rows)
    if max_length:
        width = min(width, max_length)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    ids_t = torch.full((len(rows), width), pad, dtype=torch.long)
    att = torch.zeros((len(rows), width), dtype=torch.long)
    lab = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    for i, (ids, mask) in enumerate(rows):
        x = torch.tensor(ids[:width], dtype=torch.long)
        m = torch.tensor(mask[:width], dtype=torch.bool)
        ids_t[i, : len(x)] = x
        att[i, : len(x)] = 1
        lab[i, : len(x)] = torch.where(m, x, torch.full_like(x, IGNORE))
    return {"input_ids": ids_t, "attention_mask": att, "labels": lab}


def _pieces(tok: PreTrainedTokenizerBase, ids: Sequence[int]) -> list[str]:
    """The decoded text of each token on its own (special tokens kept)."""
    return [tok.decode([int(i)], skip_special_tokens=False, clean_up_tokenization_spaces=False) for i in ids]


def _runs(tok: PreTrainedTokenizerBase, input_ids: Sequence[int], labels: Sequence[int], attention_mask: Sequence[int] | None):
    """Consecutive runs of ``(text, carries_loss)`` over the non-padding tokens."""
    ids = [int(i) for i in input_ids]
    lab = [int(x) for x in labels]
    keep = [True] * len(ids) if attention_mask is None else [bool(a) for a in attention_mask]
    runs: list[tuple[str, bool]] = []
    for piece, y, k in zip(_pieces(tok, ids), lab, keep):
        if not k:
            continue
        on = y != IGNORE
        if runs and runs[-1][1] == on:
            runs[-1] = (runs[-1][0] + piece, on)
        else:
            runs.append((piece, on))
    return runs


def mask_text(tok: PreTrainedTokenizerBase, input_ids: Sequence[int], labels: Sequence[int],
              attention_mask: Sequence[int] | None = None, open_mark: str = "[[", close_mark: str = "]]") -> str:
    """The decoded sequence with every loss-carrying run wrapped in ``[[...]]`` (padding dropped).

    E.g. ``<|user|>reverse cat<|end|><|assistant|>[[<think></think><answer>tac</answer><|end|>]]``.
    """
    return "".join(f"{open_mark}{t}{close_mark}" if on else t for t, on in _runs(tok, input_ids, labels, attention_mask))


def mask_html(tok: PreTrainedTokenizerBase, input_ids: Sequence[int], labels: Sequence[int],
              attention_mask: Sequence[int] | None = None) -> str:
    """An HTML line with one box per token: green boxes carry loss, grey ones are context only."""
    ids = [int(i) for i in input_ids]
    keep = [True] * len(ids) if attention_mask is None else [bool(a) for a in attention_mask]
    spans = []
    for t, (piece, y, k) in enumerate(zip(_pieces(tok, ids), labels, keep)):
        if not k:
            continue
        on = int(y) != IGNORE
        style = ("background:#009E7333;border:1px solid #009E73;" if on else "background:#99999922;border:1px solid #bbb;color:#666;")
        shown = html.escape(piece).replace("\n", "↵").replace(" ", "␣")
        spans.append(f'<span style="{style}padding:0 1px;margin:0 1px;font-family:monospace;border-radius:2px" '
                     f'title="position {t}, id {ids[t]}">{shown}</span>')
    legend = ('<div style="font-size:80%;color:#666;margin-top:2px">'
              '<span style="background:#009E7333;border:1px solid #009E73;padding:0 3px">loss</span> '
              '<span style="background:#99999922;border:1px solid #bbb;padding:0 3px">no loss</span></div>')
    return '<div style="line-height:1.9">' + "".join(spans) + "</div>" + legend


def mask_rows(tok: PreTrainedTokenizerBase, input_ids: Sequence[int], labels: Sequence[int],
              attention_mask: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """One dict per non-padding token: ``pos``, ``token`` (text), ``id``, ``label``, ``loss`` (bool)."""
    ids = [int(i) for i in input_ids]
    keep = [True] * len(ids) if attention_mask is None else [bool(a) for a in attention_mask]
    rows = []
    for t, (piece, y, k) in enumerate(zip(_pieces(tok, ids), labels, keep)):
        if k:
            rows.append({"pos": t, "token": piece, "id": ids[t], "label": int(y), "loss": int(y) != IGNORE})
    return rows


# ---------------------------------------------------------------------------------------------- loss
def token_mean_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """SFT loss as TRL computes it: ``-sum_{b,t} log p(y_bt) / N`` over all ``N`` loss tokens of the batch.

    ``logits`` ``[B, L, V]``; ``labels`` ``[B, L]`` aligned with the inputs (shifted inside), ``-100`` =
    no loss. Same value as :func:`utils.training.mle_loss`, written out with ``log_softmax``.
    """
    logp = logits[:, :-1].float().log_softmax(-1)
    y = labels[:, 1:]
    m = y != IGNORE
    picked = logp.gather(-1, y.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return -(picked * m).sum() / m.sum().clamp(min=1)


def sequence_mean_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The *other* average: each sequence's mean token loss, then the mean over sequences.

    Gives short answers as much weight as long ones; differs from :func:`token_mean_loss` whenever the
    sequences have different numbers of loss tokens. Rows without loss tokens are skipped.
    """
    logp = logits[:, :-1].float().log_softmax(-1)
    y = labels[:, 1:]
    m = (y != IGNORE).float()
    nll = -(logp.gather(-1, y.clamp(min=0).unsqueeze(-1)).squeeze(-1) * m).sum(-1)
    n = m.sum(-1)
    has = n > 0
    return (nll[has] / n[has]).mean()


def loss_sum_and_count(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int]:
    """``(sum of token NLLs, number of loss tokens)`` of one micro-batch (for gradient accumulation)."""
    y = labels[:, 1:]
    m = y != IGNORE
    logp = logits[:, :-1].float().log_softmax(-1)
    nll = -(logp.gather(-1, y.clamp(min=0).unsqueeze(-1)).squeeze(-1) * m).sum()
    return nll, int(m.sum())


def sft_step(
    model: PreTrainedModel,
    opt: torch.optim.Optimizer,
    micro_batches: Sequence[dict[str, torch.Tensor]],
    clip: float | None = 1.0,
) -> float:
    """One optimizer step over ``micro_batches`` (gradient accumulation), returning the token-mean loss.

    Each micro-batch's summed NLL is divided by the number of loss tokens in *all* micro-batches, so the
    accumulated gradient equals the gradient of one big batch's token-mean loss - what ``transformers``'
    Trainer does with ``num_items_in_batch``. (Averaging per-micro-batch means instead would weight
    tokens of short micro-batches more.)
    """
    device = next(model.parameters()).device
    total = sum(int((mb["labels"][:, 1:] != IGNORE).sum()) for mb in micro_batches)
    opt.zero_grad(set_to_none=True)
    loss_value = 0.0
    for mb in micro_batches:
        mb = {k: v.to(device) for k, v in mb.items()}
        labels = mb.pop("labels")
        logits = model(**mb).logits
        s, _ = loss_sum_and_count(logits, labels)
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
) -> list[float]:
    """Supervised fine-tuning from scratch: AdamW, warm-up + cosine schedule, loss per :func:`sft_batch`.

    ``checkpoint``: a file to save to every ``save_every`` steps and to resume from (:mod:`utils.checkpoint`).

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
    ckpt = as_checkpoint(checkpoint, settings, save_every)
    start, losses = ckpt.resume(model, opt, sched) if ckpt else (0, [])
    model.train()
    micro = batch_size // grad_accum
    bar = tqdm(range(start, steps), desc=desc, mininterval=2, initial=start, total=steps)
    for step in bar:
        idx = order[step * batch_size : (step + 1) * batch_size]
        mbs = [sft_batch(tok, [convs[i] for i in idx[j : j + micro]], mode, max_length) for j in range(0, batch_size, micro)]
        losses.append(sft_step(model, opt, mbs, clip))
        sched.step()
        if ckpt:
            ckpt.save_if_due(step + 1, steps, model, opt, sched, losses)
        if step % 10 == 0 or step == steps - 1:
            bar.set_postfix(loss=f"{sum(losses[-10:]) / len(losses[-10:]):.3f}")
    model.eval()
    return losses


# ---------------------------------------------------------------------------------------------- TRL
def sft_config(device: str = "cpu", dtype: torch.dtype = torch.float32, output_dir: str | None = None, **overrides: Any):
    """An ``trl.SFTConfig`` with defaults that work on a CPU and on a small GPU.

    CPU: ``use_cpu=True`` and no bf16 (TRL defaults to bf16); GPU: bf16 or fp16 mixed precision from
    ``dtype`` (keep the model's weights in fp32). Always: no reporting, no checkpoints, no activation
    checkpointing (our models are small), ``max_length=256``, logging every step. ``overrides`` win.
    """
    from trl import SFTConfig

    cuda = device.startswith("cuda")
    kw: dict[str, Any] = dict(
        output_dir=output_dir or tempfile.mkdtemp(prefix="sft-"),
        use_cpu=not cuda, bf16=cuda and dtype == torch.bfloat16, fp16=cuda and dtype == torch.float16,
        report_to="none", save_strategy="no", gradient_checkpointing=False, max_length=256,
        logging_steps=1, dataloader_num_workers=0, seed=0,
    )
    kw.update(overrides)
    return SFTConfig(**kw)


def trl_collate(trainer: Any, start: int = 0, n: int = 8) -> dict[str, torch.Tensor]:
    """Rows ``start .. start+n-1`` of the trainer's *prepared* train dataset, collated by its own collator.

    (TRL tokenizes, masks and truncates the dataset in ``SFTTrainer.__init__``; the collator pads.)
    """
    rows = [trainer.train_dataset[i] for i in range(start, start + n)]
    keep = {"input_ids", "labels", "seq_lengths"}
    return trainer.data_collator([{k: v for k, v in r.items() if k in keep} for r in rows])


def trl_loss(trainer: Any, batch: dict[str, torch.Tensor], num_items_in_batch: int | None = None) -> torch.Tensor:
    """The trainer's own training loss (``SFTTrainer.compute_loss``) on ``batch``, with gradients.

    Without ``num_items_in_batch`` TRL divides the summed NLL by this batch's loss tokens; the Trainer
    passes the count over all accumulated micro-batches instead.
    """
    model = trainer.model
    device = next(model.parameters()).device
    inputs = {k: v.to(device) for k, v in batch.items()}
    return trainer.compute_loss(model, inputs, num_items_in_batch=num_items_in_batch)


# ---------------------------------------------------------------------------------------------- evaluation
def by_turn(problems: Sequence[Problem], values: Sequence[float]) -> dict[str, float]:
    """Mean of ``values`` over single-turn problems and over second turns of dialogues (NaN if none)."""
    out = {}
    for name, want in (("single-turn", False), ("second turn", True)):
        v = [x for p, x in zip(problems, values) if is_dialogue(p) == want]
        out[name] = float(sum(v) / len(v)) if v else float("nan")
    return out


def format_rate(texts: Sequence[str]) -> float:
    """Fraction of completions that are exactly one ``<think>`` block followed by one ``<answer>`` block."""
    return float(sum(world.parse_completion(t).well_formed for t in texts) / max(len(texts), 1))
