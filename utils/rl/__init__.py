"""Reinforcement learning for language models (survey §2.1-2.2, §3.1.5, §3.2-3.3). Builds on :mod:`utils.lm`,
:mod:`utils.sft` and :mod:`utils.reward_models`.

* :mod:`.policy_gradient` - REINFORCE with baselines (group mean, leave-one-out, SCST) and GRPO's group-standardised
  advantage, an A2C value head, MIXER and MRT, gradient-variance measurement, rollouts.
* :mod:`.common` - what PPO, GRPO and OREO share: the reward signature and the verifier reward, the separate
  critic, masked means, the exact per-state KL, the per-step history of a run.
* :mod:`.ppo` - RLHF's PPO from scratch: per-token KL-in-reward, GAE, the clipped surrogate against π_old, a
  separate critic with a clipped value loss, whitening, diagnostics, :func:`~.ppo.train_ppo` with a pluggable reward.
* :mod:`.trpo` - one KL-constrained natural-gradient step (conjugate gradient, Fisher-vector product, line search).
* :mod:`.overoptimisation` - Gao et al.'s proxy-vs-gold functional forms, fitted to the gold reward's gain.
* :mod:`.grpo` - GRPO and its successors (Dr. GRPO, DAPO, GSPO, CISPO; TRL 1.16's ``loss_type`` s), matched to
  TRL's loss; dynamic sampling, overlong shaping, :func:`~.grpo.train_grpo`, the course's ``tiny-grpo``.
* :mod:`.trl_glue` - TRL's ``GRPOTrainer`` loss on our batches (the check of :func:`~.grpo.grpo_loss`).
* :mod:`.oreo` - OREO: soft Bellman consistency, value and policy losses on offline trajectories, the value
  at each step boundary.
* :mod:`.protocol` - how every RL chapter measures a gain: held-out order-averaged greedy, pass@k curves,
  faithfulness, and method - placebo with a paired interval over problems.
* :mod:`.r1` - DeepSeek-R1 in miniature: correctness + format rewards, stage streams, per-stage rows, the student.

``from utils.rl import common, policy_gradient as pg, ppo, grpo``.
"""
from . import common, grpo, oreo, overoptimisation, policy_gradient, ppo, protocol, r1, trpo

__all__ = ["common", "grpo", "oreo", "overoptimisation", "policy_gradient", "ppo", "protocol", "r1", "trpo"]
