"""Reward models (survey §3.1): a scalar score for a (prompt, completion), learned from comparisons. Builds on
:mod:`utils.lm` and :mod:`utils.sft`.

* :mod:`.model` - :func:`load_reward_model` (an LM with a scalar head: ``AutoModelForSequenceClassification``
  with one label, the form TRL's ``RewardTrainer`` trains), :func:`rm_texts`, :func:`score_completions`,
  :func:`ensemble_scores`; the chat batch of completions and DPO's implicit reward ``β log π/π_ref``.
* :mod:`.losses` - Bradley-Terry (margin, centering) and Plackett-Luce losses.
* :mod:`.train` - :func:`pair_batch`, :func:`train_reward_model`, Plackett-Luce rankings, margin accuracy,
  :func:`course_reward_model` (chapter 05's RM: loaded, or trained with its recipe).
* :mod:`.trl_glue` - TRL's ``RewardTrainer`` on the course's pairs, its batches and its loss.
* :mod:`.calibration` - the annotator's probabilities, calibration curves and ECE, error rate by ensemble disagreement.
* :mod:`.process` - outcome (ORM) and process (PRM) reward models: step boundaries, exact and Monte-Carlo
  (Math-Shepherd) step labels, aggregation, ``course_orm`` / ``course_prm`` (chapter 06).
* :mod:`.judges` - AI judges (a model's own likelihood) and AI-labelled preference pairs, bias probes (chapter 08).

Imports only :mod:`utils.sft`, :mod:`utils.lm`, :mod:`utils.world` and the top-level helpers.
"""
from .losses import bradley_terry_loss, plackett_luce_loss
from .model import ensemble_scores, load_reward_model, rm_texts, score_completions
from .train import course_reward_model, pair_batch, train_reward_model

__all__ = [
    "bradley_terry_loss", "course_reward_model", "ensemble_scores", "load_reward_model", "pair_batch",
    "plackett_luce_loss", "rm_texts", "score_completions", "train_reward_model",
]
