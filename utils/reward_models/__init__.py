"""Layer 4, reward models (survey §3.1): a scalar score for a (prompt, completion), learned from comparisons.

* :mod:`.model` - :func:`load_reward_model` (an LM with a scalar head: ``AutoModelForSequenceClassification``
  with one label, the form TRL's ``RewardTrainer`` trains), :func:`rm_texts`, :func:`score_completions`,
  :func:`ensemble_scores`.
* :mod:`.losses` - Bradley-Terry and Plackett-Luce losses, pairwise accuracy.
* :mod:`.train` - :func:`pair_batch`, :func:`train_reward_model` (AdamW, the Bradley-Terry loss),
  :func:`pairwise_accuracy`, :func:`course_reward_model` (load chapter 05's RM or train one with its recipe).

Imports only :mod:`utils.lm`, :mod:`utils.world` and the top-level helpers.
"""
from .losses import bradley_terry_loss, plackett_luce_loss
from .model import ensemble_scores, load_reward_model, rm_texts, score_completions
from .train import course_reward_model, pair_batch, pairwise_accuracy, train_reward_model

__all__ = [
    "bradley_terry_loss", "course_reward_model", "ensemble_scores", "load_reward_model", "pair_batch", "pairwise_accuracy",
    "plackett_luce_loss", "rm_texts", "score_completions", "train_reward_model",
]
