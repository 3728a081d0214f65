"""Scorers: one interface for everything that judges a partial solution during search.

A :class:`Scorer` is called as ``scorer(problems, texts) -> list[list[float]]``: for each partial solution
(completion text so far), **one score per step it has completed** (:func:`partial_boundaries`; a trailing step
still being written is not scored). ``scorer.final(problems, texts) -> list[float]`` aggregates those into the
one number a search ranks by. Implementations:

* :class:`VerifierScorer` - the world's exact step labels: a step scores 1 if it is valid and the target is still
  reachable; ``final`` is 1 while every step does ("alive"), and the outcome (:func:`utils.world.score`) once the
  answer is closed. Costs no model tokens.
* :class:`ORMScorer` - an outcome reward model read at each step's prefix (the probability that the solution
  ending there is correct); ``final`` = at the whole text.
* :class:`PRMScorer` - a process reward model's step probabilities; ``final`` = one aggregation of
  :data:`utils.reward_models.process.AGGREGATIONS` (``min``, ``last``, ``product``, ``mean``).
* :class:`ValueScorer` - a value model (:class:`utils.rl.common.Critic`) read at each step boundary
  (:func:`utils.rl.oreo.step_values`); ``final`` = the value of the latest state (``-inf`` with no step).
* :class:`LogProbScorer` - the policy's own mean token log-probability of the text up to each step; ``final`` =
  over the whole text.

Every model-based scorer adds the tokens it reads (prompt + text, distinct pairs once) and its batches to an
optional :class:`utils.lm.compute.Ledger`. Texts may be partial: a think block not yet closed is scored as if
``</think>`` followed its last completed step, which a causal model's scores at that step cannot see.
"""
from __future__ import annotations

import math
from typing import Protocol, Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..lm.compute import Ledger, charge
from ..lm.generation import build_prompts
from ..lm.logprobs import completion_logprobs
from ..reward_models.model import rm_texts
from ..reward_models.process import AGGREGATIONS, aggregate, orm_scores, step_probabilities
from ..rl.common import Critic
from ..rl.oreo import step_values
from ..world import ANSWER_CLOSE, SEPARATORS, THINK_CLOSE, THINK_OPEN, Problem, score, step_boundaries
from ..world.rewards import process_rewards


class Scorer(Protocol):
    """Scores partial solutions step by step (``M`` problems and ``M`` texts in, ``M`` results out)."""

    def __call__(self, problems: Sequence[Problem], texts: Sequence[str]) -> list[list[float]]:
        """One score per completed step of each text (:func:`partial_boundaries`)."""
        ...

    def final(self, problems: Sequence[Problem], texts: Sequence[str]) -> list[float]:
        """One score per text: what a search ranks candidates by."""
        ...


# ---------------------------------------------------------------------------------------------- partial texts
def closed(text: str) -> str:
    """``text`` with an open think block cut after its last completed step and closed with ``</think>``, so that
    :func:`utils.world.step_boundaries` (and every labeller and model built on it) sees the completed steps only.
    Texts without ``<think>`` or with ``</think>`` pass through."""
    start = text.find(THINK_OPEN)
    if start < 0 or THINK_CLOSE in text[start:]:
        return text
    cut = max((text.rfind(s) for s in SEPARATORS), default=-1)
    return (text[: cut + 1] if cut >= start + len(THINK_OPEN) else text[: start + len(THINK_OPEN)]) + THINK_CLOSE


def partial_boundaries(text: str) -> list[int]:
    """Character positions where each *completed* step of a partial solution ends (its separator, or ``</think>``);
    equals :func:`utils.world.step_boundaries` on a text whose think block is closed."""
    c = closed(text)
    return [b for b in step_boundaries(c) if b < len(text) and (c is text or c[b] in SEPARATORS)]


def _pairs(problems: Sequence[Problem], texts: Sequence[str]) -> tuple[list[Problem], list[str]]:
    if len(problems) != len(texts):
        raise ValueError(f"{len(problems)} problems but {len(texts)} texts")
    return list(problems), [closed(t) for t in texts]


def _charge_reads(ledger: Ledger | None, tok: PreTrainedTokenizerBase, problems: Sequence[Problem],
                  texts: Sequence[str], batch_size: int) -> None:
    """Add the tokens a reward/value model reads (``rm_texts``: prompt + text + end, each distinct pair once)."""
    if ledger is None or not texts:
        return
    distinct = list(dict.fromkeys(zip([p.uid + "|" + p.prompt for p in problems], rm_texts(tok, problems, texts))))
    n = sum(len(ids) for ids in tok([t for _, t in distinct], add_special_tokens=False)["input_ids"])
    charge(ledger, tokens_scored=n, model_calls=math.ceil(len(distinct) / batch_size))


def _prefixes(texts: Sequence[str]) -> tuple[list[int], list[str]]:
    """Each text cut after each of its steps (the separator kept), flattened, with the owner of each cut."""
    owner, cuts = [], []
    for i, t in enumerate(texts):
        for b in step_boundaries(t):
            owner.append(i)
            cuts.append(t[: b + 1] if t[b] in SEPARATORS else t[:b] + THINK_CLOSE)
    return owner, cuts


def _regroup(n: int, owner: Sequence[int], values: Sequence[float]) -> list[list[float]]:
    out: list[list[float]] = [[] for _ in range(n)]
    for i, v in zip(owner, values):
        out[i].append(float(v))
    return out


# ---------------------------------------------------------------------------------------------- the exact verifier
class VerifierScorer:
    """The world's exact step labels (``process_rewards``): 1 for a valid step after which the target is still
    reachable, else 0. ``final``: the outcome (0/1) once the answer is closed, else 1 while every step scores 1."""

    def __init__(self, ledger: Ledger | None = None) -> None:
        self.ledger = ledger  # kept for the common interface: an exact verifier runs no model

    def __call__(self, problems: Sequence[Problem], texts: Sequence[str]) -> list[list[float]]:
        probs, shut = _pairs(problems, texts)
        return [process_rewards(p, c) for p, c in zip(probs, shut)]

    def final(self, problems: Sequence[Problem], texts: Sequence[str]) -> list[float]:
        steps = self(problems, texts)
        return [score(p, t) if ANSWER_CLOSE in t else float(all(v == 1.0 for v in s))
                for p, t, s in zip(problems, texts, steps)]


# ---------------------------------------------------------------------------------------------- reward models
class ORMScorer:
    """An outcome reward model (:func:`utils.reward_models.process.orm_scores`) read at each step's prefix."""

    def __init__(self, model: PreTrainedModel, tok: PreTrainedTokenizerBase, ledger: Ledger | None = None,
                 batch_size: int = 128) -> None:
        self.model, self.tok, self.ledger, self.batch_size = model, tok, ledger, batch_size

    def _scores(self, problems: list[Problem], texts: list[str]) -> list[float]:
        _charge_reads(self.ledger, self.tok, problems, texts, self.batch_size)
        return orm_scores(self.model, self.tok, problems, texts, self.batch_size).tolist() if texts else []

    def __call__(self, problems: Sequence[Problem], texts: Sequence[str]) -> list[list[float]]:
        probs, shut = _pairs(problems, texts)
        owner, cuts = _prefixes(shut)
        return _regroup(len(shut), owner, self._scores([probs[i] for i in owner], cuts))

    def final(self, problems: Sequence[Problem], texts: Sequence[str]) -> list[float]:
        if len(problems) != len(texts):
            raise ValueError(f"{len(problems)} problems but {len(texts)} texts")
        return self._scores(list(problems), list(texts))


class PRMScorer:
    """A process reward model's step probabilities (:func:`~utils.reward_models.process.step_probabilities`);
    ``final`` aggregates them by ``how`` (:func:`~utils.reward_models.process.aggregate`; no step: 0)."""

    def __init__(self, model: PreTrainedModel, tok: PreTrainedTokenizerBase, how: str = "min",
                 ledger: Ledger | None = None, batch_size: int = 128) -> None:
        if how not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {how!r}; choose one of {AGGREGATIONS}")
        self.model, self.tok, self.how, self.ledger, self.batch_size = model, tok, how, ledger, batch_size

    def __call__(self, problems: Sequence[Problem], texts: Sequence[str]) -> list[list[float]]:
        probs, shut = _pairs(problems, texts)
        _charge_reads(self.ledger, self.tok, probs, shut, self.batch_size)
        return step_probabilities(self.model, self.tok, probs, shut, self.batch_size) if shut else []

    def final(self, problems: Sequence[Problem], texts: Sequence[str]) -> list[float]:
        return aggregate(self(problems, texts), self.how).tolist()


# ---------------------------------------------------------------------------------------------- value model
class ValueScorer:
    """A value model's ``V(s)`` after each step (:func:`utils.rl.oreo.step_values`); ``final`` = the latest
    state's value, ``-inf`` for a text with no completed step (it loses every comparison)."""

    def __init__(self, critic: Critic, tok: PreTrainedTokenizerBase, ledger: Ledger | None = None,
                 batch_size: int = 64) -> None:
        self.critic, self.tok, self.ledger, self.batch_size = critic, tok, ledger, batch_size

    def __call__(self, problems: Sequence[Problem], texts: Sequence[str]) -> list[list[float]]:
        probs, shut = _pairs(problems, texts)
        _charge_reads(self.ledger, self.tok, probs, shut, self.batch_size)
        return step_values(self.critic, self.tok, probs, shut, self.batch_size) if shut else []

    def final(self, problems: Sequence[Problem], texts: Sequence[str]) -> list[float]:
        return [v[-1] if v else -math.inf for v in self(problems, texts)]


# ---------------------------------------------------------------------------------------------- the policy itself
class LogProbScorer:
    """The policy's mean token log-probability of the text up to and including each step's boundary token;
    ``final`` = over the whole text (``-inf`` for an empty one). Teacher-forced, in batches of ``batch_size``."""

    def __init__(self, model: PreTrainedModel, tok: PreTrainedTokenizerBase, ledger: Ledger | None = None,
                 batch_size: int = 64) -> None:
        self.model, self.tok, self.ledger, self.batch_size = model, tok, ledger, batch_size

    @torch.no_grad()
    def _token_logprobs(self, problems: Sequence[Problem], texts: Sequence[str]) -> list[tuple[list[float], list[tuple[int, int]]]]:
        """Per text: the log-prob of each of its tokens and the tokens' character spans."""
        device = next(self.model.parameters()).device
        prompts = build_prompts(self.tok, problems)
        out = []
        for s in range(0, len(texts), self.batch_size):
            p_enc = self.tok(prompts[s:s + self.batch_size], add_special_tokens=False)["input_ids"]
            c_enc = self.tok(list(texts[s:s + self.batch_size]), add_special_tokens=False, return_offsets_mapping=True)
            P, T = max(map(len, p_enc)), max([len(c) for c in c_enc["input_ids"]] + [1])
            pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else self.tok.eos_token_id
            ids, pm = torch.full((len(p_enc), P), pad), torch.zeros(len(p_enc), P, dtype=torch.long)
            cids, cm = torch.full((len(p_enc), T), pad), torch.zeros(len(p_enc), T, dtype=torch.long)
            for i, (p, c) in enumerate(zip(p_enc, c_enc["input_ids"])):
                ids[i, P - len(p):], pm[i, P - len(p):] = torch.tensor(p), 1      # prompts left-padded
                cids[i, :len(c)], cm[i, :len(c)] = torch.tensor(c, dtype=torch.long), 1
            was = self.model.training
            self.model.eval()
            lp = completion_logprobs(self.model, ids.to(device), pm.to(device), cids.to(device), cm.to(device)).logprobs
            self.model.train(was)
            charge(self.ledger, tokens_scored=int(pm.sum() + cm.sum()), model_calls=1)
            for i, c in enumerate(c_enc["input_ids"]):
                out.append((lp[i, :len(c)].float().cpu().tolist(), list(c_enc["offset_mapping"][i])))
        return out

    def __call__(self, problems: Sequence[Problem], texts: Sequence[str]) -> list[list[float]]:
        probs, _ = _pairs(problems, texts)
        rows = self._token_logprobs(probs, list(texts)) if texts else []
        out = []
        for t, (lp, offs) in zip(texts, rows):
            means = []
            for b in partial_boundaries(t):
                n = next((j + 1 for j, (a, e) in enumerate(offs) if a <= b < e), len(lp))   # through the boundary token
                means.append(sum(lp[:n]) / max(n, 1))
            out.append(means)
        return out

    def final(self, problems: Sequence[Problem], texts: Sequence[str]) -> list[float]:
        probs, _ = _pairs(problems, texts)
        rows = self._token_logprobs(probs, list(texts)) if texts else []
        return [sum(lp) / len(lp) if lp else -math.inf for lp, _ in rows]
