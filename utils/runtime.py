"""Profiles: one switch (``smoke`` / ``cpu`` / ``gpu``) that sets model, sizes, dtype, threads and seeds.

Every notebook starts with a papermill ``parameters`` cell holding ``PROFILE = None`` and calls
:func:`setup`. ``None`` means: the ``COURSE_PROFILE`` environment variable if set, else ``gpu`` when
CUDA is available, else ``cpu``.

=========  ==========================================  ===============================================
profile    meant for                                   what it promises
=========  ==========================================  ===============================================
smoke      CI / ``make test``                          every cell runs in seconds; outcomes not asserted
cpu        a laptop, offline                           the tiny model; learning effects real and asserted
gpu        a Colab T4 or any CUDA GPU (<= 14 GiB)      real small instruct models, fp16 where no bf16
=========  ==========================================  ===============================================
"""
from __future__ import annotations

import os
import random
import resource
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch

PROFILES = ("smoke", "cpu", "gpu")


@dataclass(frozen=True)
class Profile:
    """Everything that differs between profiles. Notebooks read sizes from here, never hard-code them.

    Attributes:
        name: ``"smoke"``, ``"cpu"`` or ``"gpu"``.
        model: the default policy model for the chapter (a name :func:`utils.lm.models.load_model` knows).
        device: ``"cpu"`` or ``"cuda"``.
        dtype: compute dtype (fp32 on CPU; bf16 on GPUs that have it, else fp16).
        threads: torch intra-op threads on CPU.
        seed: the base random seed.
        n_eval: problems per difficulty level in an evaluation.
        n_samples: samples per prompt for pass@k / best-of-N / group methods.
        n_train: training examples for a fine-tuning run.
        train_steps: optimizer steps for a fine-tuning run.
        batch_size: sequences per optimizer step.
        max_new_tokens: generation budget per completion.
        eval_batch_size: prompts per generation batch.
        eval_orders: orderings per held-out problem in an evaluation (``utils.lm.evaluation.evaluate(...,
            orders=P.eval_orders)``; 6 asks every Countdown-3 problem in all its orders).
        assert_outcomes: whether self-checks on measured outcomes are enforced (not in ``smoke``).
    """

    name: str
    model: str
    device: str
    dtype: torch.dtype
    threads: int
    seed: int = 0
    n_eval: int = 100
    n_samples: int = 16
    n_train: int = 2000
    train_steps: int = 200
    batch_size: int = 32
    max_new_tokens: int = 96
    eval_batch_size: int = 256
    eval_orders: int = 6
    assert_outcomes: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def pick(self, smoke: Any, cpu: Any, gpu: Any) -> Any:
        """Choose a value by profile, for the few sizes that are specific to one notebook.

        A ``gpu`` dry run (``COURSE_DRY_RUN=1``) takes the smoke value where both are sizes (numbers or lists of
        numbers) and the gpu value otherwise (a model name, a task, a dict of settings): the gpu code path at
        smoke cost.
        """
        if self.extra.get("dry_run"):
            return smoke if _is_size(smoke) and _is_size(gpu) else gpu
        return {"smoke": smoke, "cpu": cpu, "gpu": gpu}[self.name]

    def recipe(self, table: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        """A copy of this profile's row of a training recipe ``{"smoke": {...}, "cpu": {...}, "gpu": {...}}`` (the
        settings of one of the course's shared models: steps, sizes, learning rate, backbone).

        A ``gpu`` dry run takes the table's ``"dry_run"`` row where it has one (e.g. the gpu backbone at a CPU's
        sizes), else the ``"smoke"`` row: the code path at smoke cost.
        """
        if self.extra.get("dry_run"):
            return dict(table["dry_run"] if "dry_run" in table else table["smoke"])
        return dict(table[self.name])

    def checkpoint(self, name: str) -> Path | None:
        """Where a long training run saves and resumes (:mod:`utils.checkpoint`), or ``None`` for no saving.

        ``$COURSE_CHECKPOINTS/<name>.pt`` when that variable is set (on Colab, point it at a mounted Google
        Drive folder to survive a runtime reset); else in ``gpu`` the course cache
        (``~/.cache/llm-post-training-course/checkpoints``); else ``None`` (CPU runs are minutes long).
        """
        root = os.environ.get("COURSE_CHECKPOINTS")
        if not root and self.name != "gpu":
            return None
        folder = Path(root) if root else cache_dir() / "checkpoints"
        return folder / f"{name}.pt"

    def model_dir(self, name: str) -> Path:
        """Where a chapter saves a model that later chapters load: ``build/models/<profile>/<name>``.

        One folder per profile (a gpu dry run has its own), so a smoke run's model is never picked up by a ``cpu``
        run, nor a dry run's by a real gpu run. ``$COURSE_BUILD``
        moves ``build/``.
        """
        return build_dir() / "models" / (self.name + ("-dry-run" if self.extra.get("dry_run") else "")) / name

    def device_label(self) -> str:
        """The device in words: the GPU's name, or ``CPU, <n> threads``."""
        if self.device == "cuda" and torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
        return f"CPU, {self.threads} threads"

    def with_(self, **changes: Any) -> "Profile":
        """A copy with some fields changed (e.g. ``P.with_(n_eval=50)``)."""
        return replace(self, **changes)


def cache_dir() -> Path:
    """Where converted models and checkpoints live: ``$COURSE_CACHE`` or ``~/.cache/llm-post-training-course``."""
    return Path(os.environ.get("COURSE_CACHE", Path.home() / ".cache" / "llm-post-training-course"))


def build_dir() -> Path:
    """The course's output folder: ``$COURSE_BUILD`` or ``build/`` at the repository's root."""
    return Path(os.environ.get("COURSE_BUILD", Path(__file__).resolve().parents[1] / "build"))


def _is_size(value: Any) -> bool:
    """A number (not a bool) or a non-empty list/tuple of numbers."""
    if isinstance(value, (list, tuple)):
        return bool(value) and all(_is_size(v) for v in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def default_threads() -> int:
    """``COURSE_THREADS`` if set, else half the cores, between 1 and 4.

    Half, because another process often shares the machine (a browser, a second notebook): torch with
    as many threads as cores slows down several-fold as soon as anything else runs, while one thread
    per two cores loses little when the machine is idle. Models this small gain nothing beyond 4.
    """
    env = os.environ.get("COURSE_THREADS")
    if env:
        return max(1, int(env))
    return max(1, min(4, (os.cpu_count() or 1) // 2))


def resolve_profile_name(name: str | None = None) -> str:
    """Explicit name, else ``$COURSE_PROFILE``, else ``gpu`` with CUDA, else ``cpu``."""
    name = name or os.environ.get("COURSE_PROFILE") or ("gpu" if torch.cuda.is_available() else "cpu")
    name = name.strip().lower()
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {PROFILES}")
    return name


def get_profile(name: str | None = None) -> Profile:
    """Build the :class:`Profile` for ``name`` (see :func:`resolve_profile_name`).

    Raises ``RuntimeError`` for ``gpu`` on a machine without CUDA, rather than silently using the CPU.
    """
    name = resolve_profile_name(name)
    threads = default_threads()
    smoke = Profile(
        "smoke", "tiny-sft", "cpu", torch.float32, threads=min(threads, 2), n_eval=6, n_samples=4,
        n_train=64, train_steps=3, batch_size=8, max_new_tokens=48, eval_batch_size=64,
        eval_orders=1, assert_outcomes=False,
    )
    if name == "smoke":
        return smoke
    if name == "cpu":
        return Profile("cpu", "tiny-sft", "cpu", torch.float32, threads=threads)
    if os.environ.get("COURSE_DRY_RUN", "0") == "1":
        # the gpu profile's code path (its models, dtypes and branches) with smoke sizes, on CUDA if present,
        # else on the CPU in bf16 (so dtype mistakes still surface); for checking a notebook before a GPU run
        cuda = torch.cuda.is_available()
        dtype = gpu_dtype() if cuda else torch.bfloat16
        return smoke.with_(name="gpu", model="smollm2-135m", device="cuda" if cuda else "cpu", dtype=dtype,
                           extra={"dry_run": True})
    if not torch.cuda.is_available():
        raise RuntimeError(
            "profile 'gpu' needs a CUDA GPU, and torch sees none here. Use PROFILE='cpu' (the tiny "
            "model, minutes on a laptop) or run on a GPU machine / Colab with a GPU runtime."
        )
    dtype = gpu_dtype()
    return Profile(
        "gpu", "smollm2-135m", "cuda", dtype, threads=threads, n_eval=100, n_samples=16, n_train=2000,
        train_steps=200, batch_size=16, max_new_tokens=256, eval_batch_size=64,
    )


def gpu_dtype(capability: tuple[int, int] | None = None) -> torch.dtype:
    """The compute dtype for a CUDA GPU: bf16 where the GPU has it natively, else fp16. The one place that decides.

    Native bf16 arrived with compute capability 8.0 (Ampere: A100, RTX 30xx; Hopper: H100/H200). A Colab T4
    is 7.5: there ``torch.cuda.is_bf16_supported()`` still answers True, because bf16 can be *emulated* in
    fp32, several times slower - so that call cannot decide. On fp16 GPUs, train with autocast and a gradient
    scaler (:func:`grad_scaler`; TRL's ``fp16=True`` does the same).

    ``capability``: ``(major, minor)``; ``None`` asks the current CUDA device.
    """
    if capability is None:
        if not torch.cuda.is_available():
            raise RuntimeError("gpu_dtype() without a capability needs a CUDA device")
        capability = torch.cuda.get_device_capability()
    return torch.bfloat16 if tuple(capability) >= (8, 0) else torch.float16


def grad_scaler(dtype: torch.dtype, device: str = "cuda") -> "torch.amp.GradScaler | None":
    """A gradient scaler for fp16 mixed precision on CUDA (fp16's 5 exponent bits flush small gradients to
    zero without one), else ``None`` (fp32 and bf16 need none)."""
    if dtype == torch.float16 and device.startswith("cuda"):
        return torch.amp.GradScaler("cuda")
    return None


def trainer_precision(device: str, dtype: torch.dtype) -> dict[str, bool]:
    """The precision flags of a ``transformers``/TRL ``TrainingArguments`` for a profile's device and dtype.

    CPU: ``use_cpu=True`` and neither bf16 nor fp16 (TRL's configs default to bf16). CUDA: mixed precision in
    ``dtype`` (:func:`gpu_dtype` chose it), the weights staying fp32; with ``fp16=True`` the Trainer adds the
    gradient scaler itself.
    """
    cuda = device.startswith("cuda")
    return {"use_cpu": not cuda, "bf16": cuda and dtype == torch.bfloat16, "fp16": cuda and dtype == torch.float16}


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def setup(name: str | None = None, verbose: bool = True) -> Profile:
    """Resolve the profile, set threads and seeds, and print a one-line summary. Call once per notebook."""
    profile = get_profile(name)
    torch.set_num_threads(profile.threads)
    seed_everything(profile.seed)
    if verbose:
        dry = " (dry run: smoke sizes, outcomes not asserted)" if profile.extra.get("dry_run") else ""
        print(f"profile={profile.name}{dry} model={profile.model} device={profile.device_label()} dtype={str(profile.dtype).split('.')[-1]}")
    return profile


def peak_memory_mb(device: str = "cpu") -> float:
    """Peak memory so far: process RSS on CPU, or ``torch.cuda.max_memory_allocated`` on CUDA (MiB)."""
    if device == "cuda" and torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


@contextmanager
def timer(label: str = "", verbose: bool = True) -> Iterator[dict[str, float]]:
    """``with timer("sft") as t: ...`` then ``t["seconds"]``; prints the time when ``verbose``."""
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        yield out
    finally:
        out["seconds"] = time.perf_counter() - t0
        if verbose and label:
            print(f"{label}: {out['seconds']:.1f} s")
