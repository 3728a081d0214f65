"""Reinforcement learning for language models (survey §2.1-2.2, §3.2-3.3). Builds on :mod:`utils.lm`.

* :mod:`.policy_gradient` - REINFORCE with baselines (group mean, leave-one-out, SCST), an A2C value head,
  MIXER and MRT, gradient-variance measurement, rollouts. PPO, GRPO and its successors, OREO come later.

``from utils.rl import policy_gradient as pg``.
"""
from . import policy_gradient

__all__ = ["policy_gradient"]
