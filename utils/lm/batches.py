"""Token batches for training: packed pretraining blocks and SFT batches with loss masks.

The course builds every SFT batch with **one** function, :func:`sft_batch`, for any tokenizer. Its loss
covers **every assistant turn** by default (dialogue SFT, what TRL's ``assistant_only_loss`` does): the
model learns each reply it is shown, and a single-turn conversation has only one. ``mode="last"`` trains on
the final assistant turn only (TRL's prompt/completion format); ``mode="all"`` on every token.

Two ways to find the assistant's tokens, which give the same labels where both apply (tested):

* :func:`marker_batch` - from ``{% generation %}`` markers in the chat template (the tiny model's template
  has them; ``apply_chat_template(return_assistant_tokens_mask=True)``);
* :func:`prefix_batch` - from rendering each conversation prefix (:func:`turn_spans`): works for any
  template that renders a prefix as a token prefix of the whole (SmolLM2, Qwen2.5), no markers needed.

:func:`sft_batch` takes the markers when the template has them and ``mode="assistant"``, else the prefixes.
Shapes: ``B`` conversations, ``L`` padded length; labels are ``-100`` (:data:`IGNORE`) where no loss is taken.
"""
from __future__ import annotations

from typing import Iterable, Literal, Sequence

import torch
from transformers import PreTrainedTokenizerBase

from ..world import SYSTEM_PROMPT
from .logprobs import IGNORE

Message = dict[str, str]
Conversation = list[Message]
MaskMode = Literal["assistant", "last", "all"]


def is_tiny(tok: PreTrainedTokenizerBase) -> bool:
    """True for the course's character-level tokenizer (it was trained without a system prompt)."""
    return len(tok) < 1000


def default_system(tok: PreTrainedTokenizerBase) -> str | None:
    """The system prompt the course gives a model: none for the tiny model, :data:`utils.world.SYSTEM_PROMPT`
    for real instruct models (the same rule prompts and training data follow)."""
    return None if is_tiny(tok) else SYSTEM_PROMPT


def has_generation_markers(tok: PreTrainedTokenizerBase) -> bool:
    """Whether the chat template marks assistant turns with ``{% generation %}`` (the tiny model's does)."""
    template = tok.chat_template or ""
    return "{% generation %}" in template or "{%- generation %}" in template


def with_system(tok: PreTrainedTokenizerBase, conversations: Sequence[Sequence[Message]], system: str | bool | None) -> list[list[Message]]:
    """Conversations with a system turn added where they have none.

    ``system=None``/``False``: unchanged; ``True``: :func:`default_system` (none for the tiny model);
    a string: that prompt.
    """
    prompt = default_system(tok) if system is True else (system or None)
    if not prompt:
        return [list(c) for c in conversations]
    return [list(c) if c and c[0]["role"] == "system" else [{"role": "system", "content": prompt}, *c] for c in conversations]


def sft_batch(
    tok: PreTrainedTokenizerBase,
    conversations: Sequence[Sequence[Message]],
    mode: MaskMode = "assistant",
    max_length: int | None = None,
    system: str | bool | None = None,
) -> dict[str, torch.Tensor]:
    """The course's SFT batch: ``input_ids``, ``attention_mask``, ``labels``, each ``[B, L]``, right-padded.

    ``mode``: ``"assistant"`` (default) loss on every assistant turn; ``"last"`` the final one only;
    ``"all"`` every token. ``system``: add a system turn first (:func:`with_system`; ``True`` = the course's
    prompt for real models, as :func:`utils.lm.generation.build_prompts` uses at evaluation time).
    """
    convs = with_system(tok, conversations, system)
    if mode == "assistant" and has_generation_markers(tok):
        return marker_batch(tok, convs, max_length)
    return prefix_batch(tok, convs, mode, max_length)


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


def marker_batch(
    tok: PreTrainedTokenizerBase, conversations: Sequence[Sequence[Message]], max_length: int | None = None
) -> dict[str, torch.Tensor]:
    """SFT batch with loss on every assistant turn, read from the template's ``{% generation %}`` markers.

    Returns ``input_ids`` ``[B, L]`` (right-padded), ``attention_mask`` ``[B, L]`` and ``labels`` ``[B, L]``
    (``-100`` on system/user tokens, role markers and padding). Needs a chat template with
    ``{% generation %}`` markers (the tiny model's has them).
    """
    rows = []
    for c in conversations:
        enc = tok.apply_chat_template(c, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
        rows.append((list(enc["input_ids"]), list(enc["assistant_masks"])))
    return _collate(tok, rows, max_length)


def _collate(tok: PreTrainedTokenizerBase, rows: Sequence[tuple[list[int], list[int]]], max_length: int | None) -> dict[str, torch.Tensor]:
    """``(token ids, 0/1 loss mask)`` per conversation -> right-padded ``input_ids``, ``attention_mask``, ``labels``
    (``[B, L]`` each; ``L`` the longest row, cut at ``max_length``; labels ``-100`` off the mask and on padding)."""
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


def prefix_batch(
    tok: PreTrainedTokenizerBase,
    convs: Sequence[Sequence[Message]],
    mode: MaskMode = "assistant",
    max_length: int | None = None,
) -> dict[str, torch.Tensor]:
    """Right-padded SFT batch for any prefix-preserving chat template (labels from :func:`loss_mask`).

    Returns ``input_ids`` ``[B, L]``, ``attention_mask`` ``[B, L]`` and ``labels`` ``[B, L]`` (the token id
    where the token carries loss, ``-100`` elsewhere, padding included). With the tiny tokenizer and
    ``mode="assistant"`` this equals :func:`marker_batch`, which reads the template's ``{% generation %}``
    markers instead (a test checks it).
    """
    return _collate(tok, [loss_mask(tok, c, mode) for c in convs], max_length)
