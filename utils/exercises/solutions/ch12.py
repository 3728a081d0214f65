"""Reference solutions to chapter 12's exercises (spoilers!). The test-suite checks that each passes its grader."""
from __future__ import annotations

import re
from typing import Any, Callable, Mapping

import torch

from ...world import parse_completion, split_steps

_ONE_OP = re.compile(r"\d+[+\-*/]\d+=\d+")


def document_mask(completion_ids: torch.Tensor, mask: torch.Tensor, stop_id: int) -> torch.Tensor:
    """12.1: ``[B, T]`` ``mask`` cut after each row's first ``stop_id`` inside the mask (that token kept)."""
    m = mask.bool()
    hit = (completion_ids == stop_id) & m
    before = torch.cumsum(hit.int(), dim=1) - hit.int()      # stop tokens strictly before each position
    return m & (before == 0)


def signal_share(rewards: torch.Tensor, group_size: int) -> float:
    """The share of prompts (rows ``i*G ... i*G+G-1``) whose rewards are not all equal (used in the solutions)."""
    g = rewards.reshape(-1, group_size)
    return float((g.max(1).values != g.min(1).values).float().mean())


def readability(completion: Any) -> float:
    """12.2: the share of the think block's steps that are exactly one operation ``a op b = c``; 0 without steps."""
    steps = split_steps(parse_completion(completion).think)
    return sum(bool(_ONE_OP.fullmatch(s)) for s in steps) / len(steps) if steps else 0.0


def stage_gains(rows: Mapping[str, Mapping[str, float]], skill: str) -> dict[str, float]:
    """12.3: ``{stage: rows[stage][skill] - rows[previous stage][skill]}`` for every stage after the first, in order."""
    names = list(rows)
    return {b: rows[b][skill] - rows[a][skill] for a, b in zip(names, names[1:])}


# ---------------------------------------------------------------- typical wrong answers (each must fail its grader)
_ONE_OP = re.compile(r"\d+[+\-*/]\d+=\d+")


def _read_searched(text):  # a search instead of a full match
    steps = split_steps(parse_completion(text).think)
    return sum(bool(_ONE_OP.search(s)) for s in steps) / len(steps) if steps else 0.0


def _read_checked(text):  # checking the arithmetic too
    steps = split_steps(parse_completion(text).think)
    ok = [bool(_ONE_OP.fullmatch(s)) and eval(s.split("=")[0]) == int(s.split("=")[1]) for s in steps]
    return sum(ok) / len(ok) if ok else 0.0


def _read_fragile(text):  # crashing on None
    think = re.search(r"<think>(.*)</think>", text).group(1)
    steps = [s for s in think.split(",") if s]
    return sum(bool(_ONE_OP.fullmatch(s)) for s in steps) / len(steps)


def _gains_vs_first(rows, skill):  # against the first stage
    names = list(rows)
    return {b: rows[b][skill] - rows[names[0]][skill] for b in names[1:]}


def _gains_alphabetical(rows, skill):  # alphabetical order
    names = sorted(rows)
    return {b: rows[b][skill] - rows[a][skill] for a, b in zip(names, names[1:])}


def _gains_with_first(rows, skill):  # the first stage included with 0
    names = list(rows)
    return {names[0]: 0.0, **{b: rows[b][skill] - rows[a][skill] for a, b in zip(names, names[1:])}}


def _cut_exclusive(ids, mask, stop):  # the stop token itself masked out
    hit = (ids == stop) & mask.bool()
    return mask.bool() & (torch.cumsum(hit.int(), 1) == 0)


def _cut_last(ids, mask, stop):  # up to the last stop token
    hit = ((ids == stop) & mask.bool()).int()
    after = hit.flip(1).cumsum(1).flip(1) - hit                  # stop tokens strictly after each position
    return mask.bool() & ((after > 0) | (hit > 0) | (hit.sum(1, keepdim=True) == 0))


def _cut_batch(ids, mask, stop):  # the first stop anywhere in the batch cuts every row
    hit = ((ids == stop) & mask.bool()).any(0).int()
    return mask.bool() & ((torch.cumsum(hit, 0) - hit) == 0)[None, :]


def _cut_ignores_mask(ids, mask, stop):  # padding back in, pad positions can stop a row
    hit = (ids == stop).int()
    return (torch.cumsum(hit, 1) - hit) == 0


WRONG: dict[str, list[Callable[..., Any]]] = {
    # the stop token dropped; cut at the last stop; one cut for the whole batch; padding ignored
    "12.1": [_cut_exclusive, _cut_last, _cut_batch, _cut_ignores_mask],
    "12.2": [_read_searched, _read_checked, _read_fragile],
    "12.3": [_gains_vs_first, _gains_alphabetical, _gains_with_first],
}
