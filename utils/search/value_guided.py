"""Value-guided step search (OREO's test-time use, survey §3.2.7, §5): a beam of width 1 over reasoning steps.

Each round :func:`~utils.search.expand.expand` samples ``k`` next steps of every unfinished partial solution and
a :class:`~utils.search.scorers.Scorer` (by default the value model, :class:`~utils.search.scorers.ValueScorer`)
keeps the best. A solution whose chosen step closes the think block, or that runs out of rounds, is finished
greedily. Every sampled token is in the result's :class:`~utils.lm.compute.Ledger`, so the compute compares
directly with plain sampling.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..lm.compute import Ledger
from ..lm.generation import build_prompts, sample
from ..rl.common import Critic
from ..world import Problem, score
from .expand import expand
from .scorers import Scorer, ValueScorer


@dataclass
class SearchResult:
    """What :func:`value_guided_search` returns: ``texts`` (one completion per problem), ``correct`` ``[M]`` 0/1,
    ``tokens`` (all tokens sampled, candidates included), ``rounds``, and the whole ``ledger`` (scoring included)."""

    texts: list[str]
    correct: torch.Tensor
    tokens: int
    rounds: int
    ledger: Ledger = field(default_factory=Ledger)


def _best(values: Sequence[float]) -> int:
    """Index of the highest value (the first on ties)."""
    return max(range(len(values)), key=lambda j: (values[j], -j))


@torch.no_grad()
def _finish_greedily(policy: PreTrainedModel, tok: PreTrainedTokenizerBase, problems: Sequence[Problem],
                     prefixes: Sequence[str], max_new_tokens: int, batch_size: int, ledger: Ledger) -> list[str]:
    """Each prefix completed by greedy decoding (one batched call)."""
    if not prefixes:
        return []
    prompts = [p + pre for p, pre in zip(build_prompts(tok, problems), prefixes)]
    s = sample(policy, tok, prompts, n=1, max_new_tokens=max_new_tokens, temperature=0.0, batch_size=batch_size,
               ledger=ledger)
    return [pre + t for pre, t in zip(prefixes, s.texts)]


@torch.no_grad()
def value_guided_search(policy: PreTrainedModel, critic: Critic | None, tok: PreTrainedTokenizerBase,
                        problems: Sequence[Problem], k: int, max_new_tokens: int = 48, max_rounds: int = 6,
                        temperature: float = 1.0, seed: int = 0, batch_size: int = 256,
                        scorer: Scorer | None = None) -> SearchResult:
    """Step-level best-of-``k``: per round, ``k`` sampled next steps of each unfinished solution (at most
    ``max_new_tokens`` tokens each; round ``r`` uses seed ``seed + r``), the one whose new state scores highest
    (``scorer.final``; default ``ValueScorer(critic, tok)``, the value after the state's last step) is kept; ties go
    to the first. A kept step that ends the text is final; one that closes the think block, and every solution
    still open after ``max_rounds``, is finished greedily (``max_new_tokens``)."""
    problems = list(problems)
    ledger = Ledger()
    if scorer is None:
        if critic is None:
            raise ValueError("value_guided_search needs a critic or a scorer")
        scorer = ValueScorer(critic, tok, ledger=ledger)
    prefix = [""] * len(problems)
    final: list[str | None] = [None] * len(problems)
    to_finish: list[int] = []
    rounds = 0
    for rnd in range(max_rounds):
        todo = [i for i in range(len(problems)) if final[i] is None and i not in to_finish]
        if not todo:
            break
        rounds += 1
        ex = expand(policy, tok, [problems[i] for i in todo], [prefix[i] for i in todo], k, temperature,
                    max_new_tokens, seed + rnd, ledger, batch_size)
        states, done = ex.states(), ex.finished()
        values = scorer.final([problems[i] for i in todo for _ in range(k)], [s for row in states for s in row])
        for a, i in enumerate(todo):
            j = _best(values[a * k:(a + 1) * k])
            if done[a][j]:
                final[i] = states[a][j]
            else:
                prefix[i] = states[a][j]
                if ex.ends[a][j] == "think":
                    to_finish.append(i)
    rest = [i for i in range(len(problems)) if final[i] is None]
    for i, t in zip(rest, _finish_greedily(policy, tok, [problems[i] for i in rest], [prefix[i] for i in rest],
                                           max_new_tokens, batch_size, ledger)):
        final[i] = t
    texts = [t or "" for t in final]
    return SearchResult(texts, torch.tensor([score(p, t) for p, t in zip(problems, texts)]), ledger.tokens_generated,
                        rounds, ledger)
