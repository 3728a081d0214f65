"""Reinforcement learning for language models (survey §2.1-2.2, §3.1.5, §3.2-3.3). Builds on :mod:`utils.lm`,
:mod:`utils.sft` and :mod:`utils.reward_models`.

* :mod:`.policy_gradient` - REINFORCE with baselines (group mean, leave-one-out, SCST), an A2C value head,
  MIXER and MRT, gradient-variance measurement, rollouts.
* :mod:`.ppo` - RLHF's PPO from scratch: per-token KL-in-reward, GAE, the clipped surrogate against π_old, a
  separate critic with a clipped value loss, whitening, diagnostics, :func:`~.ppo.train_ppo` with a pluggable reward.
* :mod:`.trpo` - one KL-constrained natural-gradient step (conjugate gradient, Fisher-vector product, line search).
* :mod:`.overoptimisation` - best-of-N's exact KL and curves, Gao et al.'s proxy-vs-gold functional forms.

GRPO and its successors, OREO come later. ``from utils.rl import policy_gradient as pg, ppo``.
"""
from . import overoptimisation, policy_gradient, ppo, trpo

__all__ = ["overoptimisation", "policy_gradient", "ppo", "trpo"]
