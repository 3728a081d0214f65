"""Supervised fine-tuning (survey §4): data, loops, TRL glue, distillation, PEFT. Builds on :mod:`utils.lm`.

* :mod:`.data` - conversations and TRL datasets from the world, dialogues, mixtures;
* :mod:`.train` - :func:`train_sft` (from scratch, gradient accumulation), :func:`fine_tune`, :func:`clone`;
* :mod:`.masks` - show which tokens carry loss; :mod:`.trl_glue` - ``SFTConfig`` defaults, TRL's own loss;
* :mod:`.distill` - teachers, token-level KD, rejection sampling, skills and forgetting;
* :mod:`.peft` - PEFT's methods (LoRA, IA3, prefix/prompt tuning, LLaMA-Adapter), training memory.

``from utils import sft`` then ``sft.conversations(problems, cot=True)``, ``sft.train_sft(...)``. The SFT batch
itself (loss masks) and the losses are language-model pieces: :func:`utils.lm.sft_batch`, :mod:`utils.lm.logprobs`.
"""
from .data import (
    by_turn,
    conversation,
    conversations,
    dialogue_problems,
    format_rate,
    is_dialogue,
    mix,
    sft_dataset,
    strip_rationale,
)
from .distill import (
    DistillData,
    RejectionSamples,
    distill_dataset,
    forgetting,
    forgetting_report,
    keep_correct,
    rejection_sample,
    solver_completion,
    token_kd_loss,
)
from .masks import mask_html, mask_rows, mask_text
from .train import clone, fine_tune, problem_batches, sft_step, train_sft
from .trl_glue import sft_config, trl_collate, trl_loss

__all__ = [
    "DistillData", "RejectionSamples", "by_turn", "clone", "conversation", "conversations", "dialogue_problems",
    "distill_dataset", "fine_tune", "forgetting", "forgetting_report", "format_rate", "is_dialogue", "keep_correct",
    "mask_html", "mask_rows", "mask_text", "mix",
    "problem_batches", "rejection_sample", "sft_config", "sft_dataset", "sft_step",
    "solver_completion", "strip_rationale", "token_kd_loss", "train_sft", "trl_collate", "trl_loss",
   
]
