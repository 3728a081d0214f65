"""TRL glue of the reward models (chapter 05): a ``RewardTrainer`` on the course's pairs, and its batches and loss, to
check :func:`utils.reward_models.losses.bradley_terry_loss` against the library's ``compute_loss``."""
from __future__ import annotations

from typing import Any, Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..world.preferences import PreferencePair
from .model import rm_texts


def reward_trainer(
    model: PreTrainedModel, tok: PreTrainedTokenizerBase, pairs: Sequence[PreferencePair], device: str = "cpu",
    dtype: torch.dtype = torch.float32, margins: Sequence[float] | None = None, output_dir: str | None = None,
    **overrides: Any,
) -> Any:
    """A TRL ``RewardTrainer`` on ``pairs``, with the texts the course's reward model reads (:func:`rm_texts`:
    rows ``chosen``/``rejected``, plus a ``margin`` column when ``margins`` is given).

    CPU-safe ``RewardConfig`` defaults (``use_cpu`` or mixed precision from :func:`utils.runtime.trainer_precision`,
    no reporting, no checkpoints, no activation checkpointing, ``max_length=256``, one logged step at a time);
    ``overrides`` win (e.g. ``max_steps``, ``per_device_train_batch_size``, ``learning_rate``,
    ``center_rewards_coefficient``)."""
    import tempfile

    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    from ..runtime import trainer_precision

    if not pairs:
        raise ValueError("reward_trainer needs at least one preference pair")
    if margins is not None and len(margins) != len(pairs):
        raise ValueError(f"{len(margins)} margins for {len(pairs)} pairs")
    probs = [p.problem for p in pairs]
    rows: dict[str, list[Any]] = {"chosen": rm_texts(tok, probs, [p.chosen for p in pairs]),
                                  "rejected": rm_texts(tok, probs, [p.rejected for p in pairs])}
    if margins is not None:
        rows["margin"] = [float(m) for m in margins]
    kw: dict[str, Any] = dict(
        output_dir=output_dir or tempfile.mkdtemp(prefix="rm-"), **trainer_precision(device, dtype), report_to="none",
        save_strategy="no", gradient_checkpointing=False, max_length=256, logging_steps=1, dataloader_num_workers=0,
        seed=0, disable_tqdm=True,
    )
    kw.update(overrides)
    trainer = RewardTrainer(model=model, args=RewardConfig(**kw), train_dataset=Dataset.from_dict(rows), processing_class=tok)
    if trainer.args.disable_tqdm:  # no progress bar: then the Trainer prints every log dict; the caller reads trainer.state
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    return trainer


def trainer_batch(trainer: Any, start: int = 0, n: int = 8) -> dict[str, torch.Tensor]:
    """Rows ``start .. start+n-1`` of a ``RewardTrainer``'s prepared (tokenized) dataset, collated by its own
    collator: ``input_ids``/``attention_mask`` ``[2n, L]``, chosen rows first (and ``margin`` ``[n]`` if present)."""
    rows = [trainer.train_dataset[i] for i in range(start, start + n)]
    keep = {"chosen_ids", "rejected_ids", "margin"}
    return trainer.data_collator([{k: v for k, v in r.items() if k in keep} for r in rows])


def trainer_loss(trainer: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """``RewardTrainer.compute_loss`` on ``batch`` (with gradients; the model in train mode, as in training)."""
    model = trainer.model
    device = next(model.parameters()).device
    was = model.training
    model.train()
    loss = trainer.compute_loss(model, {k: v.to(device) for k, v in batch.items()})
    model.train(was)
    return loss
