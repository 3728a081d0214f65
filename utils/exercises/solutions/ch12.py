"""Reference solutions to chapter 12's exercises (spoilers!). The test-suite checks that each passes its grader."""
from __future__ import annotations

import re
from typing import Any, Mapping

import torch

from ...world import parse_completion, split_steps

_ONE_OP = re.compile(r"\d+[+\-*/]\d+=\d+")


def signal_share(rewards: torch.Tensor, group_size: int) -> float:
    """12.1: the share of prompts (rows ``i*G ... i*G+G-1``) whose rewards are not all equal."""
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
