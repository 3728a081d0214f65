"""Reinforcement learning for language models (survey §2.1-2.2, §3.1.5, §3.2-3.3). Builds on :mod:`utils.lm`,
:mod:`utils.sft` and :mod:`utils.reward_models`.

* :mod:`.policy_gradient` - REINFORCE with baselines (group mean, leave-one-out, SCST), an A2C value head,
  MIXER and MRT, gradient-variance measurement, rollouts.
* :mod:`.ppo` - RLHF's PPO from scratch: per-token KL-in-reward, GAE, the clipped surrogate against π_old, a
  separate critic with a clipped value loss, whitening, diagnostics, :func:`~.ppo.train_ppo` with a pluggable reward.
* :mod:`.trpo` - one KL-constrained natural-gradient step (conjugate gradient, Fisher-vector product, line search).
* :mod:`.overoptimisation` - best-of-N's exact KL and curves, Gao et al.'s proxy-vs-gold functional forms.
* :mod:`.grpo` - GRPO and its successors (Dr. GRPO, DAPO, GSPO, CISPO; TRL 1.16's ``loss_type`` s), matched to
  TRL's loss; dynamic sampling, overlong shaping, :func:`~.grpo.train_grpo`, the course's ``tiny-grpo``.
* :mod:`.oreo` - OREO: soft Bellman consistency, value and policy losses on offline trajectories, RFT/DPO baselines,
  value-guided step search.
* :mod:`.r1` - DeepSeek-R1 in miniature: correctness + format rewards, stage streams, per-stage rows, the student.

``from utils.rl import policy_gradient as pg, ppo, grpo``.
"""
from . import grpo, oreo, overoptimisation, policy_gradient, ppo, r1, trpo

__all__ = ["grpo", "oreo", "overoptimisation", "policy_gradient", "ppo", "r1", "trpo"]
