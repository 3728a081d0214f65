"""Graders of chapter 12's exercises: each test takes the student's function and raises ``AssertionError``
with a helpful message on failure (see :func:`utils.exercises.grade`).

* 12.1 (★★) the tokens that receive the advantage: a completion mask cut at the end of the document;
* 12.2 (★★) a readability reward for the think block (R1's language-consistency reward, in our world);
* 12.3 (★) what each stage of a pipeline added.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from .grader import Exercise

Test = Callable[[Callable[..., Any]], None]


# ---------------------------------------------------------------- 12.1: the mask cut at the end of the document
def _cut(fn: Callable, ids: list[list[int]], mask: list[list[int]], stop: int):
    import torch

    out = fn(torch.tensor(ids), torch.tensor(mask), stop)
    assert isinstance(out, torch.Tensor) and tuple(out.shape) == (len(ids), len(ids[0])), (
        f"expected a [B, T] = {len(ids)}x{len(ids[0])} tensor, got {type(out).__name__} {tuple(getattr(out, 'shape', ()))}")
    return out.bool().int().tolist()


def _t_cut_values(fn: Callable) -> None:
    """each row keeps its tokens up to and including its first stop token; a row without one keeps its mask"""
    ids = [[5, 7, 2, 9, 9], [5, 2, 7, 2, 9], [5, 7, 7, 7, 7]]
    got = _cut(fn, ids, [[1] * 5] * 3, 2)
    want = [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]
    hint = ""
    if got[0] == [1, 1, 0, 0, 0]:
        hint = " - keep the stop token itself (the sampler keeps it: the policy must learn to end the document)"
    elif got[1] == [1, 1, 1, 1, 0]:
        hint = " - cut at the *first* stop token of the row, not the last"
    elif got[2] != [1, 1, 1, 1, 1]:
        hint = " - a row without a stop token keeps every token"
    assert got == want, f"ids {ids}, stop 2: expected {want}, got {got}{hint}"


def _t_cut_rows(fn: Callable) -> None:
    """every row is cut at its own stop token (not at the batch's first)"""
    got = _cut(fn, [[2, 5, 5, 5], [5, 5, 5, 2]], [[1] * 4] * 2, 2)
    assert got == [[1, 0, 0, 0], [1, 1, 1, 1]], (f"expected [[1, 0, 0, 0], [1, 1, 1, 1]], got {got} - find the first stop "
                                                  "per row (e.g. a cumulative sum along the time axis)")


def _t_cut_padding(fn: Callable) -> None:
    """padding stays masked out, and a pad position that happens to hold the stop id does not count"""
    ids, mask = [[5, 7, 9, 2, 2], [2, 5, 7, 0, 0], [5, 5, 5, 5, 5]], [[1, 1, 1, 0, 0], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0]]
    got = _cut(fn, ids, mask, 2)
    want = [[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 0, 0, 0]]
    assert got == want, (f"ids {ids}, mask {mask}: expected {want}, got {got} - the result may only remove tokens from "
                         "the mask, and only tokens inside the mask can stop a row")


# ---------------------------------------------------------------- 12.2: the readability reward
def _think(steps: str) -> str:
    return f"<think>{steps}</think><answer>1</answer>"


def _t_read_values(fn: Callable) -> None:
    """the share of the think block's steps written as one operation 'a op b = c' (integers, no spaces)"""
    cases = [(_think("7*4=28,28-3=25"), 1.0), (_think("7*4=28,then subtract 3,25"), 1 / 3),
             (_think("8/2=4,4+9=13,13*2=26,26-1=25"), 1.0), (_think("7*4-3=25"), 0.0), (_think("7*4=28;28-3=25"), 1.0)]
    for text, want in cases:
        got = float(fn(text))
        assert abs(got - want) < 1e-9, f"{text!r}: expected {want:.4f}, got {got:.4f}"


def _t_read_form_only(fn: Callable) -> None:
    """a step must be exactly one operation (anchored), and only the form counts, not the arithmetic"""
    got = float(fn(_think("7*4=29,28-3=25")))
    assert abs(got - 1.0) < 1e-9, (f"'7*4=29' is readable but wrong: expected 1.0, got {got:.4f} - checking the arithmetic "
                                   "is the correctness reward's job")
    for text in [_think("x7*4=28"), _think("7*4=28=28"), _think("7 * 4 = 28 ok"), _think("(7*4)=28")]:
        got = float(fn(text))
        assert abs(got) < 1e-9, f"{text!r}: the step is not exactly 'a op b = c', expected 0.0, got {got:.4f} (use a full match)"


def _t_read_garbage(fn: Callable) -> None:
    """0.0 without a think block or steps; never raises on odd input (None, a number, an unclosed tag, 1 MB of text)"""
    for text in ["<answer>25</answer>", "<think></think><answer>25</answer>", "7*4=28,28-3=25", None, 12345, "<think>7*4=28",
                 "<think>" + "7*4=28," * 150_000 + "</think>"]:
        try:
            got = float(fn(text))
        except Exception as e:  # noqa: BLE001
            raise AssertionError(f"{str(text)[:40]!r}: a reward must never raise, got {type(e).__name__}: {e}") from None
        if isinstance(text, str) and text.startswith("<think>" + "7*4=28,") and len(text) > 100:
            assert 0.0 <= got <= 1.0 and not math.isnan(got), f"a huge think block: expected a share in [0, 1], got {got}"
            continue
        assert abs(got) < 1e-9, f"{str(text)[:40]!r}: no (closed) think block with steps: expected 0.0, got {got}"


# ---------------------------------------------------------------- 12.3: what each stage added
_ROWS = {"base": {"cd3": 0.00, "add": 0.00}, "cold start": {"cd3": 0.15, "add": 0.20},
         "RL": {"cd3": 0.18, "add": 0.10}, "RS + SFT": {"cd3": 0.17, "add": 0.60}, "RL 2": {"cd3": 0.19, "add": 0.55}}


def _t_gains_values(fn: Callable) -> None:
    """the gain of each stage over the stage just before it (not over the first stage)"""
    got = dict(fn(_ROWS, "cd3"))
    want = {"cold start": 0.15, "RL": 0.03, "RS + SFT": -0.01, "RL 2": 0.02}
    hint = " - compare each stage with the one before it, not with the first" if abs(got.get("RL 2", 0) - 0.19) < 1e-9 else ""
    assert set(got) == set(want), f"expected one gain per stage after the first, {list(want)}, got {list(got)}"
    assert all(abs(got[k] - want[k]) < 1e-9 for k in want), f"expected {want}, got {got}{hint}"


def _t_gains_order(fn: Callable) -> None:
    """the stages keep the pipeline's order (the order of the dict), losses stay negative, one stage gives {}"""
    got = fn(_ROWS, "add")
    assert list(got) == ["cold start", "RL", "RS + SFT", "RL 2"], f"keep the pipeline's order, got {list(got)}"
    assert abs(got["RL"] + 0.10) < 1e-9, f"RL lost 0.10 of addition accuracy: expected -0.10, got {got['RL']}"
    assert dict(fn({"only": {"add": 0.3}}, "add")) == {}, "a single stage has nothing to compare with: expected {}"


EXERCISES: dict[str, Exercise] = {
    "12.1": Exercise("the tokens that receive the advantage: the mask cut at the end of the document",
                     [_t_cut_values, _t_cut_rows, _t_cut_padding], "document_mask"),
    "12.2": Exercise("a readability reward for the think block", [_t_read_values, _t_read_form_only, _t_read_garbage],
                     "readability"),
    "12.3": Exercise("what each stage of the pipeline added", [_t_gains_values, _t_gains_order], "stage_gains"),
}
