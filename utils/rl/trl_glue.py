"""TRL glue of GRPO (chapter 10): a ``GRPOTrainer`` built only to call its loss, ``_compute_loss``, on our batch, to
check :func:`utils.rl.grpo.grpo_loss` against the library's (every ``loss_type``, clipping, KL term).

Shapes as in :mod:`utils.rl.grpo`: ``B`` sequences, ``T`` completion length.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..lm.samples import Samples


def trl_grpo_trainer(model: PreTrainedModel, tok: PreTrainedTokenizerBase, output_dir: str | Path, **config: Any) -> Any:
    """A TRL ``GRPOTrainer`` around ``model`` (not copied) with a dummy reward and dataset, to call its loss.

    ``config`` goes to ``trl.GRPOConfig`` (e.g. ``loss_type``, ``epsilon``, ``epsilon_high``, ``beta``,
    ``importance_sampling_level``, ``max_completion_length``, ``num_generations``); CPU, fp32, no logging.
    ``beta`` is set on the built trainer, so that TRL does not load a reference model: pass ``ref_logps`` to
    :func:`trl_grpo_loss` instead.
    """
    from datasets import Dataset
    from trl import GRPOConfig as TRLConfig
    from trl import GRPOTrainer

    G = int(config.pop("num_generations", 2))
    beta = float(config.pop("beta", 0.0))
    device = next(model.parameters()).device.type
    args = TRLConfig(output_dir=str(output_dir), use_cpu=device == "cpu", bf16=False, report_to="none", save_strategy="no",
                     num_generations=G, per_device_train_batch_size=G, **config)
    trainer = GRPOTrainer(model=model, reward_funcs=lambda prompts, completions, **kw: [0.0] * len(prompts), args=args,
                          train_dataset=Dataset.from_dict({"prompt": ["unused"] * (2 * G)}), processing_class=tok)
    trainer.beta = beta  # set after construction: with beta > 0 TRL would load its own reference model by name
    return trainer


def trl_grpo_loss(trainer: Any, samples: Samples, advantages: torch.Tensor, old_logps: torch.Tensor | None = None,
                  ref_logps: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
    """TRL's ``GRPOTrainer._compute_loss`` on our batch (eval mode: no gradient-accumulation rescaling).

    Args:
        samples: the batch (``B`` sequences); advantages: ``[B]``; old_logps / ref_logps: ``[B, T]`` or ``None``;
        mask: the loss mask (default: the completion mask).
    """
    m = samples.completion_mask if mask is None else mask
    inputs = dict(prompt_ids=samples.prompt_ids, prompt_mask=samples.prompt_mask, completion_ids=samples.completion_ids,
                  completion_mask=m, advantages=advantages, num_items_in_batch=m.sum())
    if old_logps is not None:
        inputs["old_per_token_logps"] = old_logps
    if ref_logps is not None:
        inputs["ref_per_token_logps"] = ref_logps
    trainer.model.eval()
    return trainer._compute_loss(trainer.model, inputs)
