"""Direct preference optimisation (survey §3.2.1, §3.2.6, §3.2.9): losses on sequence log-probs.

* :mod:`.losses` - DPO (with the −log σ the survey's printed formula drops), IPO, SimPO, ORPO in Hong et
  al.'s form, and a listwise Plackett-Luce DPO; all on the implicit reward
  ``β log π/π_ref`` of :func:`utils.reward_models.model.implicit_reward`.

Imports only :mod:`utils.reward_models` (Plackett-Luce) and lower layers.
"""
from .losses import dpo_loss, ipo_loss, listwise_dpo_loss, orpo_loss, simpo_loss

__all__ = ["dpo_loss", "ipo_loss", "listwise_dpo_loss", "orpo_loss", "simpo_loss"]
