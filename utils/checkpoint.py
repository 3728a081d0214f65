"""Checkpoint and resume a training loop, so a long ``gpu`` run survives a Colab disconnect.

A training loop (:func:`utils.lm.training.train_lm`, :func:`utils.sft.train_sft`) given ``checkpoint=path``
saves, every ``every`` steps and at the end, everything needed to continue *exactly*: the trainable
parameters, optimizer state, scheduler, the losses so far and the random-number generators. Re-running the same cell after an
interruption resumes from the last save; re-running it after it finished returns at once with the trained
weights. Data order in the course's loops is a function of the step number, so a resumed run takes the same
batches as an uninterrupted one.

A checkpoint records a *fingerprint* of the run (its settings, the training data's checksum, the model's
class and a checksum of its starting weights). If anything differs (another learning rate, other data,
another starting model), the checkpoint is ignored and training starts over: an old file never silently
replaces a new experiment.

Files are written to a temporary name and renamed, so an interruption mid-save leaves the previous one intact.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch


def weights_checksum(model: torch.nn.Module) -> str:
    """A short checksum of a model's parameters (order-sensitive; float64 sums of each tensor)."""
    h = hashlib.sha256()
    for name, p in model.named_parameters():
        h.update(name.encode())
        h.update(f"{p.detach().double().sum().item():.6e},{p.detach().double().abs().sum().item():.6e}".encode())
    return h.hexdigest()[:16]


def data_checksum(items: Any) -> str:
    """A short checksum of training data (any JSON-able value, e.g. a list of conversations), for fingerprints."""
    return hashlib.sha256(json.dumps(items, sort_keys=True, default=str).encode()).hexdigest()[:16]


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The parameters that train (``requires_grad``), by name. Frozen weights are not saved: the fingerprint
    already guarantees they equal the starting ones, and for LoRA & co. this keeps a checkpoint to megabytes."""
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


class Checkpoint:
    """Periodic save / exact resume of a training loop at ``path`` (one ``.pt`` file).

    Args:
        path: the file; its folder is created on the first save.
        every: save after every ``every`` completed steps (and always after the last one).
        settings: the run's settings (JSON-able); part of the fingerprint.
    """

    def __init__(self, path: str | Path, every: int = 50, settings: dict[str, Any] | None = None) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.path = Path(path)
        self.every = every
        self.settings = settings or {}
        self.fingerprint: str | None = None

    def _fingerprint(self, model: torch.nn.Module) -> str:
        blob = json.dumps({"settings": self.settings, "model": type(model).__name__, "start": weights_checksum(model)},
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def resume(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any | None = None) -> tuple[int, list[float]]:
        """Restore state if a matching checkpoint exists. Returns ``(completed steps, losses so far)``.

        Call before the first step (the fingerprint is taken from the starting weights).
        """
        self.fingerprint = self._fingerprint(model)
        if not self.path.exists():
            return 0, []
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=False)
        except Exception as err:  # noqa: BLE001 - a corrupt file must not stop training
            print(f"checkpoint {self.path} unreadable ({type(err).__name__}); starting over")
            return 0, []
        if state.get("fingerprint") != self.fingerprint:
            print(f"checkpoint {self.path} belongs to another run (settings or starting weights differ); starting over")
            return 0, []
        _, unexpected = model.load_state_dict(state["model"], strict=False)
        if unexpected:
            print(f"checkpoint {self.path} does not fit this model ({len(unexpected)} unknown tensors); starting over")
            return 0, []
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng_cpu"])
        if torch.cuda.is_available() and state.get("rng_cuda") is not None:
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        print(f"resumed from {self.path} after step {state['step']}")
        return int(state["step"]), list(state["losses"])

    def save_if_due(self, step: int, total: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: Any | None, losses: list[float]) -> bool:
        """Save after ``step`` completed steps if it is a multiple of ``every`` or the last; returns whether saved."""
        if step % self.every and step != total:
            return False
        if self.fingerprint is None:
            raise RuntimeError("call resume() before the first step")
        state = {
            "fingerprint": self.fingerprint, "step": step, "losses": list(losses),
            "model": trainable_state(model), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.path)
        return True


def as_checkpoint(checkpoint: "str | Path | Checkpoint | None", settings: dict[str, Any], every: int = 50) -> Checkpoint | None:
    """Accept a path (or ``None``, or a ready :class:`Checkpoint`) in a training loop's signature."""
    if checkpoint is None or isinstance(checkpoint, Checkpoint):
        return checkpoint
    return Checkpoint(checkpoint, every=every, settings=settings)
