"""Graders of chapter 12's exercises: each test takes the student's function and raises ``AssertionError``
with a helpful message on failure (see :func:`utils.exercises.grade`).

* 12.1 (★) the share of prompt groups that carry a learning signal;
* 12.2 (★★) a readability reward for the think block (R1's language-consistency reward, in our world);
* 12.3 (★) what each stage of a pipeline added.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from .grader import Exercise

Test = Callable[[Callable[..., Any]], None]


# ---------------------------------------------------------------- 12.1: the share of groups with signal
def _share(fn: Callable, rewards: list[float], G: int) -> float:
    import torch

    return float(fn(torch.tensor(rewards, dtype=torch.float32), G))


def _t_signal_values(fn: Callable) -> None:
    """the share of prompts whose G rewards are not all equal, on hand-computable batches"""
    cases = [([0, 0, 1, 0, 0, 0, 0, 0], 4, 0.5), ([1, 1, 0, 0, 1.5, 1.5], 2, 0.0), ([0, 1.5, 1, 1, 0.5, 0.5], 2, 1 / 3),
             ([0.5, 1.5, 0.5, 0.5, 0, 0, 0, 0, 1, 1, 1, 1], 4, 1 / 3)]
    for rewards, G, want in cases:
        got = _share(fn, rewards, G)
        hint = ""
        n_diff = sum(r != rewards[0] for r in rewards)
        if abs(got - n_diff / len(rewards)) < 1e-6 and abs(want - n_diff / len(rewards)) > 1e-6:
            hint = " - count prompts (groups of G consecutive rows), not samples"
        assert abs(got - want) < 1e-6, f"rewards {rewards}, G={G}: expected {want:.4f}, got {got:.4f}{hint}"


def _t_signal_all_right(fn: Callable) -> None:
    """a group where every sample earns the same non-zero reward is silent too (its advantages are all 0)"""
    got = _share(fn, [1.5, 1.5, 1.5, 1.5, 0, 0, 0, 0], 4)
    assert abs(got) < 1e-9, (f"groups [1.5]*4 and [0]*4 both have zero advantages: expected 0, got {got:.4f}"
                             " - a non-zero mean reward is not a learning signal; a spread inside the group is")


def _t_signal_prompt_major(fn: Callable) -> None:
    """rows i*G ... i*G+G-1 belong to prompt i (prompt-major), not every G-th row"""
    got = _share(fn, [0, 0, 1, 1], 2)
    assert abs(got) < 1e-9, (f"rewards [0, 0, 1, 1] with G=2 are prompts [0, 0] and [1, 1]: expected 0, got {got:.4f}"
                             " - group consecutive rows (reshape to [-1, G])")


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
    "12.1": Exercise("the share of prompt groups with a learning signal", [_t_signal_values, _t_signal_all_right, _t_signal_prompt_major],
                     "signal_share"),
    "12.2": Exercise("a readability reward for the think block", [_t_read_values, _t_read_form_only, _t_read_garbage],
                     "readability"),
    "12.3": Exercise("what each stage of the pipeline added", [_t_gains_values, _t_gains_order], "stage_gains"),
}
