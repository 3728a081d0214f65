"""Layer 6, search at test time (survey §5): spend more samples at inference and choose among them.

* :mod:`.best_of_n` - reranking N samples by a score (ORM, PRM), majority vote, the oracle bound (pass@N),
  accuracy-vs-N curves from one sampling pass, bootstrap intervals.

Imports :mod:`utils.lm`, :mod:`utils.reward_models`, :mod:`utils.rl` and lower layers only.
"""
from .best_of_n import bootstrap_ci, curve_table, majority_curve, oracle_curve, rerank_curve

__all__ = ["bootstrap_ci", "curve_table", "majority_curve", "oracle_curve", "rerank_curve"]
