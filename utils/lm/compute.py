"""A compute ledger: how many tokens a method generated and scored, and how many model calls it made.

Test-time search spends compute in three ways: sampling new tokens, reading a prompt (or a partial solution)
before sampling, and scoring text with a model (a reward model, a value model, the policy's own log-probs).
Accuracy plotted against N hides the difference between a method that samples 48 tokens per candidate and one
that samples 6; plotted against a :class:`Ledger`'s counts it does not.

Functions that spend compute take ``ledger: Ledger | None = None`` and add to it when one is given
(:func:`utils.lm.generation.sample`, the scorers of :mod:`utils.search.scorers`); nothing is counted otherwise.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Ledger:
    """Running counts of compute.

    Attributes:
        tokens_generated: tokens sampled and kept (the completion masks' sums; pads after a row's end excluded).
        tokens_prefilled: prompt tokens read by sampling calls before they generate (pads excluded).
        tokens_scored: prompt + completion tokens of forward passes that score text (reward, value, log-prob).
        model_calls: forward batches: one per batch of a sampling call (its whole decoding loop) and one per
            batch of a scoring pass.
    """

    tokens_generated: int = 0
    tokens_prefilled: int = 0
    tokens_scored: int = 0
    model_calls: int = 0

    def add(self, other: Ledger | None = None, **counts: int) -> Ledger:
        """Add ``other``'s counts and/or keyword counts (``tokens_scored=12``) to this ledger, in place; returns it."""
        merged = other.as_dict() if other is not None else {}
        for name, value in counts.items():
            merged[name] = merged.get(name, 0) + value
        known = self.as_dict()
        for name, value in merged.items():
            if name not in known:
                raise KeyError(f"a Ledger counts {sorted(known)}, not {name!r}")
            setattr(self, name, getattr(self, name) + int(value))
        return self

    def __add__(self, other: Ledger) -> Ledger:
        if not isinstance(other, Ledger):
            return NotImplemented
        return Ledger(**self.as_dict()).add(other)

    def as_dict(self) -> dict[str, int]:
        """The counts by name."""
        return asdict(self)

    @property
    def tokens(self) -> int:
        """Every token a model read or wrote: generated + prefilled + scored."""
        return self.tokens_generated + self.tokens_prefilled + self.tokens_scored


def charge(ledger: Ledger | None, **counts: int) -> None:
    """Add ``counts`` to ``ledger`` when there is one (the opt-in every compute-spending function uses)."""
    if ledger is not None:
        ledger.add(**counts)
