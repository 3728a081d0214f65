"""Show which tokens of an SFT batch carry loss: as text, as HTML boxes, or as rows.

Used by chapter 02 to make loss masks visible; the batches themselves come from :mod:`utils.lm.batches`.
"""
from __future__ import annotations

import html
from typing import Any, Sequence

from transformers import PreTrainedTokenizerBase

from ..lm.logprobs import IGNORE


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
