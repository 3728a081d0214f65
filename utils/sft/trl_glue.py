"""TRL glue for SFT: a CPU-safe ``SFTConfig``, and the trainer's own batches and loss for agreement checks."""
from __future__ import annotations

import tempfile
from typing import Any

import torch

from ..runtime import trainer_precision


def sft_config(device: str = "cpu", dtype: torch.dtype = torch.float32, output_dir: str | None = None, **overrides: Any):
    """An ``trl.SFTConfig`` with defaults that work on a CPU and on a small GPU.

    CPU: ``use_cpu=True`` and no bf16 (TRL defaults to bf16); GPU: bf16 or fp16 mixed precision from
    ``dtype`` (keep the model's weights in fp32). Always: no reporting, no checkpoints, no activation
    checkpointing (our models are small), ``max_length=256``, logging every step. ``overrides`` win.
    """
    from trl import SFTConfig

    kw: dict[str, Any] = dict(
        output_dir=output_dir or tempfile.mkdtemp(prefix="sft-"), **trainer_precision(device, dtype),
        report_to="none", save_strategy="no", gradient_checkpointing=False, max_length=256,
        logging_steps=1, dataloader_num_workers=0, seed=0,
    )
    kw.update(overrides)
    return SFTConfig(**kw)


def trl_collate(trainer: Any, start: int = 0, n: int = 8) -> dict[str, torch.Tensor]:
    """Rows ``start .. start+n-1`` of the trainer's *prepared* train dataset, collated by its own collator.

    (TRL tokenizes, masks and truncates the dataset in ``SFTTrainer.__init__``; the collator pads.)
    """
    rows = [trainer.train_dataset[i] for i in range(start, start + n)]
    keep = {"input_ids", "labels", "seq_lengths"}
    return trainer.data_collator([{k: v for k, v in r.items() if k in keep} for r in rows])


def trl_loss(trainer: Any, batch: dict[str, torch.Tensor], num_items_in_batch: int | None = None) -> torch.Tensor:
    """The trainer's own training loss (``SFTTrainer.compute_loss``) on ``batch``, with gradients.

    Without ``num_items_in_batch`` TRL divides the summed NLL by this batch's loss tokens; the Trainer
    passes the count over all accumulated micro-batches instead.
    """
    model = trainer.model
    device = next(model.parameters()).device
    inputs = {k: v.to(device) for k, v in batch.items()}
    return trainer.compute_loss(model, inputs, num_items_in_batch=num_items_in_batch)
