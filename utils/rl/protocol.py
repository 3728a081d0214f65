"""The evaluation protocol of every RL chapter (07, 10, 11, 12): what "RL helped" has to mean before a notebook says it.

1. **Held-out, order-averaged greedy accuracy** (:func:`measure`: :func:`utils.lm.evaluation.evaluate` with
   ``orders=profile.eval_orders``) on test problems the policy never trained on.
2. **Sampled pass@1 and pass@k curves** from ``n`` samples per problem (:func:`pass_curve`): if RL only sharpens
   the distribution toward answers the model could already find, pass@1 rises while pass@k at large ``k`` does
   not (Yue et al. 2025, arXiv 2504.13837); new capability lifts the whole curve.
3. **Faithfulness** (:meth:`utils.lm.evaluation.EvalResult.faithful`): the share of right answers whose every
   step holds. The verifier reads only the answer.
4. **A placebo control** (:func:`utils.rl.common.placebo_reward`): the same run with each group's rewards
   permuted. The claim is **method - placebo** (:func:`effect`), a paired interval over problems of the per-problem
   mean over seeds; a raw before/after mixes what the reward taught with what any update does.

Shapes: ``P`` held-out problems; ``S`` seeds of an arm (one :class:`EvalResult` per seed, all of the same problems).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..lm.evaluation import EvalResult, evaluate
from ..runtime import Profile
from ..stats import Interval, paired_bootstrap
from ..world import Problem

__all__ = ["Effect", "effect", "measure", "pass_curve", "arm_scores"]


def measure(model: PreTrainedModel, tok: PreTrainedTokenizerBase, problems: Sequence[Problem], profile: Profile,
            n_samples: int = 0, max_new_tokens: int | None = None, temperature: float = 1.0, seed: int = 0,
            orders: int | None = None) -> EvalResult:
    """The protocol's evaluation: greedy over ``profile.eval_orders`` orderings (or ``orders``) and, with
    ``n_samples``, that many samples per problem at ``temperature`` in the problem's first ordering (for pass@k)."""
    res = evaluate(model, tok, problems, orders=orders or profile.eval_orders, progress=False,
                   max_new_tokens=max_new_tokens or profile.max_new_tokens, batch_size=profile.eval_batch_size, seed=seed)
    if not n_samples:
        return res
    s = evaluate(model, tok, problems, n_samples=n_samples, greedy=False, orders=1, temperature=temperature,
                 max_new_tokens=max_new_tokens or profile.max_new_tokens, batch_size=profile.eval_batch_size, seed=seed,
                 ks=tuple(k for k in (1, 2, 4, 8, 16, 32, 64, 128) if k <= n_samples), progress=False)
    res.samples, res.sample_texts, res.sample_orders, res.sample_order_texts, res.ks = (
        s.samples, s.sample_texts, s.sample_orders, s.sample_order_texts, s.ks)
    return res


def pass_curve(res: EvalResult, ks: Sequence[int] | None = None) -> dict[int, float]:
    """``{k: pass@k}`` for ``k`` in ``ks`` (default: powers of 2 up to the number of samples)."""
    n = res.samples.shape[1]
    if n == 0:
        raise ValueError("this evaluation drew no samples; measure(..., n_samples=n) first")
    ks = ks or [k for k in (1, 2, 4, 8, 16, 32, 64, 128) if k <= n]
    return {int(k): res.pass_at(int(k)) for k in ks}


def arm_scores(results: Sequence[EvalResult], metric: str = "greedy") -> np.ndarray:
    """``[P]`` per-problem ``metric`` averaged over an arm's seeds (``results``: one per seed, same problems)."""
    if not results:
        raise ValueError("an arm needs at least one evaluation")
    first = results[0].problems
    if any(r.problems != first for r in results):
        raise ValueError("every seed of an arm must be evaluated on the same problems in the same order")
    return np.mean([r.scores(metric) for r in results], axis=0)


@dataclass(frozen=True)
class Effect:
    """One training claim, measured against its control: ``gain`` (method - start), ``placebo_gain``
    (placebo - start) and ``corrected`` (method - placebo), each a paired bootstrap interval over problems."""

    metric: str
    start: float
    method: float
    placebo: float
    gain: Interval
    placebo_gain: Interval
    corrected: Interval
    seeds: int

    def row(self) -> dict[str, object]:
        """A printable row (for :func:`utils.lm.evaluation.format_table`)."""
        return {"metric": self.metric, "start": self.start, "method": self.method, "placebo": self.placebo,
                "method - start": str(self.gain), "placebo - start": str(self.placebo_gain),
                "method - placebo": str(self.corrected), "seeds": self.seeds}


def effect(start: EvalResult, method: Sequence[EvalResult], placebo: Sequence[EvalResult], metric: str = "greedy",
           n_boot: int = 2000, seed: int = 0) -> Effect:
    """The protocol's verdict on ``metric`` (``"greedy"``, ``"pass@1"``, ``"faithful"``, ``"unfaithful"``):
    method and placebo are each averaged over their seeds per problem, then compared with paired intervals."""
    s = start.scores(metric)
    m, p = arm_scores(method, metric), arm_scores(placebo, metric)
    if not (len(s) == len(m) == len(p)):
        raise ValueError(f"start, method and placebo must be evaluated on the same problems ({len(s)}, {len(m)}, {len(p)})")
    if start.problems != method[0].problems or start.problems != placebo[0].problems:
        raise ValueError("start, method and placebo must be evaluated on the same problems in the same order")
    boot = dict(n_boot=n_boot, seed=seed)
    return Effect(metric, float(s.mean()), float(m.mean()), float(p.mean()), paired_bootstrap(m, s, **boot),
                  paired_bootstrap(p, s, **boot), paired_bootstrap(m, p, **boot), min(len(method), len(placebo)))
