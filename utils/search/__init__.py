"""Search at test time (survey §5): spend more compute at inference and choose among what it produces.

* :mod:`.best_of_n` - best-of-N from one pool of samples: reranking by a score (ORM, PRM), majority vote, the
  oracle bound (pass@N), accuracy-vs-N curves with intervals; the best-of-N KL and the exact best-of-N curve.
* :mod:`.expand` - :func:`expand`: ``k`` continuations of each partial solution, each up to its next reasoning
  step, sampled in one call with every token counted.
* :mod:`.scorers` - one :class:`Scorer` interface (per-step scores of partial solutions, and a ``final``
  score): the exact verifier, ORM, PRM, value model, the policy's own log-probability.
* :mod:`.value_guided` - :func:`value_guided_search`, a step-level search led by a value model (or any scorer).

Imports :mod:`utils.lm`, :mod:`utils.reward_models`, :mod:`utils.rl` and lower layers only.
"""
from .best_of_n import (
    best_of_n_curve,
    best_of_n_weights,
    bon_kl,
    curve_table,
    majority_curve,
    oracle_curve,
    rerank_curve,
)
from .expand import STOPS, Expansion, expand
from .scorers import LogProbScorer, ORMScorer, PRMScorer, Scorer, ValueScorer, VerifierScorer
from .value_guided import SearchResult, value_guided_search

__all__ = [
    "STOPS", "Expansion", "LogProbScorer", "ORMScorer", "PRMScorer", "Scorer", "SearchResult", "ValueScorer",
    "VerifierScorer", "best_of_n_curve", "best_of_n_weights", "bon_kl", "curve_table", "expand", "majority_curve",
    "oracle_curve", "rerank_curve", "value_guided_search",
]
