"""The course's SFT, DPO and GRPO recipes as scripts that scale out: TRL's trainers, launched by Accelerate.

    python -m utils.tools.scale sft                                   # one process: a CPU or one GPU
    accelerate launch --num_processes 2 -m utils.tools.scale grpo     # DDP over 2 GPUs of one machine
    accelerate launch --cpu --num_processes 2 -m utils.tools.scale dpo --cpu   # 2 CPU processes over gloo (make test)

Nothing here is a distributed engine of its own: TRL's trainers are ``transformers.Trainer`` subclasses, and the
Trainer hands the model, optimizer and data loader to Accelerate, which wraps the model in DDP (or FSDP / DeepSpeed
ZeRO, chosen in ``accelerate config``), shards each global batch across the processes and all-reduces the gradients.

What a reader sets is the **global batch** (``--global-batch``: examples per optimizer step, the quantity the
recipe's learning rate was tuned for) and ``--grad-accum``. The script derives the per-device batch,
``global_batch / (processes × grad_accum)``, so the same command on 1, 2 or 8 processes takes the same optimizer
steps on the same examples (the data are read in order, ``train_sampling_strategy="sequential"``). For GRPO the
batch counts completions and must be a multiple of the group size.

The recipes are the notebooks' (``RECIPES``): SFT on worked Countdown-3 solutions (the cold start of 10-12),
DPO on the world's labelled preference pairs (chapter 09, β = 0.1), GRPO with the verifier's reward and
``utils.rl.grpo.RECIPE``'s group size, temperature and completion budget (chapter 10). ``--metrics FILE`` makes
the main process write what was measured: the per-step losses and gradient norms, throughput and peak memory.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

RECIPES: dict[str, dict[str, Any]] = {
    # lr and sizes as in the notebooks; --steps / --lr / --global-batch override them
    "sft": dict(lr=5e-5, steps=20, global_batch=16, problems="Countdown-3 worked solutions (the cold start of 10-12)"),
    "dpo": dict(lr=5e-5, steps=20, global_batch=8, beta=0.1, problems="labelled Countdown-3 pairs (chapter 09)"),
    "grpo": dict(lr=3e-5, steps=10, global_batch=32, problems="Countdown-3 prompts, verifier reward (chapter 10)"),
}


def per_device_batch(global_batch: int, processes: int, grad_accum: int, group: int = 1) -> int:
    """``global_batch / (processes × grad_accum)``, refusing sizes that do not divide (or, for GRPO, that split a
    group's completions over optimizer steps)."""
    if global_batch < 1 or processes < 1 or grad_accum < 1:
        raise ValueError("global batch, processes and grad_accum must be positive")
    if global_batch % group:
        raise ValueError(f"the global batch ({global_batch}) must be a multiple of the group size ({group})")
    if global_batch % (processes * grad_accum):
        raise ValueError(f"global batch {global_batch} does not split over {processes} processes x {grad_accum} "
                         "accumulation steps: choose a multiple")
    return global_batch // (processes * grad_accum)


def _common(args: argparse.Namespace, device: str, per_device: int) -> dict[str, Any]:
    from ..runtime import gpu_dtype, trainer_precision

    dtype = torch.float32 if device == "cpu" else gpu_dtype()
    return dict(output_dir=str(args.out), **trainer_precision(device, dtype), report_to="none", save_strategy="no",
                gradient_checkpointing=False, logging_steps=1, seed=args.seed, data_seed=args.seed,
                per_device_train_batch_size=per_device, gradient_accumulation_steps=args.grad_accum,
                max_steps=args.steps, learning_rate=args.lr, lr_scheduler_type="constant", warmup_steps=0,
                train_sampling_strategy="sequential", dataloader_num_workers=0, disable_tqdm=True)


def build_trainer(args: argparse.Namespace, processes: int, device: str) -> Any:
    """The TRL trainer of ``args.recipe`` with the per-device batch for ``processes`` processes."""
    from .. import world
    from ..lm.models import load_model

    model, tok = load_model(args.model, device="cpu", dtype=torch.float32)   # the Trainer places it
    n = args.steps * args.global_batch
    if args.recipe == "sft":
        from trl import SFTConfig, SFTTrainer

        from ..sft.data import sft_dataset

        pd = per_device_batch(args.global_batch, processes, args.grad_accum)
        data = sft_dataset(world.sample_problems("countdown", 3, n, split="train", seed=args.seed), "prompt_completion", cot=True)
        cfg = SFTConfig(**_common(args, device, pd), max_length=256)
        return SFTTrainer(model=model, args=cfg, train_dataset=data, processing_class=tok)
    if args.recipe == "dpo":
        from datasets import Dataset
        from trl import DPOConfig, DPOTrainer

        from ..prefs.trl_glue import conversational_rows
        from ..world.preferences import preference_pairs

        pd = per_device_batch(args.global_batch, processes, args.grad_accum)
        problems = world.sample_problems("countdown", 3, n, split="train", seed=args.seed)
        pairs = preference_pairs(problems, pairs_per_problem=1, seed=args.seed)[:n]
        ref, _ = load_model(args.model, device="cpu", dtype=torch.float32)
        cfg = DPOConfig(**_common(args, device, pd), beta=RECIPES["dpo"]["beta"], max_length=256)
        return DPOTrainer(model=model, ref_model=ref, args=cfg, train_dataset=Dataset.from_list(conversational_rows(pairs)),
                          processing_class=tok)
    if args.recipe == "grpo":
        from datasets import Dataset
        from trl import GRPOConfig, GRPOTrainer

        from ..lm.batches import default_system
        from ..rl.grpo import RECIPE
        from ..world.rewards import outcome_reward, problem_to_json, trl_reward

        g = RECIPE["cpu"]["cfg"]
        group = args.group or g["group_size"]
        pd = per_device_batch(args.global_batch, processes, args.grad_accum, group)
        problems = world.sample_problems("countdown", 3, n // group, split="train", seed=args.seed)
        system = default_system(tok)
        data = Dataset.from_dict({"prompt": [p.messages(system=system or None)[:-1] for p in problems],
                                  "problem": [problem_to_json(p) for p in problems]})
        cfg = GRPOConfig(**_common(args, device, pd), shuffle_dataset=False,   # its own sampler: in order
                         num_generations=group, max_completion_length=g["max_new_tokens"], temperature=g["temperature"],
                         beta=0.0, loss_type="grpo")
        return GRPOTrainer(model=model, reward_funcs=[trl_reward(outcome_reward)], args=cfg, train_dataset=data,
                           processing_class=tok)
    raise ValueError(f"unknown recipe {args.recipe!r}; choose one of {sorted(RECIPES)}")


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe", choices=sorted(RECIPES))
    ap.add_argument("--model", default="tiny-sft", help="a course model name, a folder or (online) a Hub id")
    ap.add_argument("--steps", type=int, help="optimizer steps (default: the recipe's)")
    ap.add_argument("--global-batch", type=int, help="examples (GRPO: completions) per optimizer step, over all processes")
    ap.add_argument("--grad-accum", type=int, default=1, help="micro-batches accumulated per optimizer step")
    ap.add_argument("--group", type=int, help="GRPO: completions per prompt (default: utils.rl.grpo.RECIPE's)")
    ap.add_argument("--lr", type=float, help="learning rate (default: the recipe's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cpu", action="store_true", help="run on CPU even where CUDA is present (accelerate launch --cpu)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process on CPU")
    ap.add_argument("--out", type=Path, help="the trainer's output folder (default: a temporary one)")
    ap.add_argument("--metrics", type=Path, help="JSON file the main process writes the measurements to")
    args = ap.parse_args(argv)
    rec = RECIPES[args.recipe]
    args.steps = args.steps if args.steps is not None else rec["steps"]
    args.global_batch = args.global_batch or rec["global_batch"]
    args.lr = args.lr if args.lr is not None else rec["lr"]
    args.out = args.out or Path(tempfile.mkdtemp(prefix=f"scale-{args.recipe}-"))

    from accelerate import PartialState

    from ..runtime import seed_everything

    if args.cpu or not torch.cuda.is_available():
        torch.set_num_threads(args.threads)
        device = "cpu"
    else:
        device = "cuda"
    state = PartialState(cpu=device == "cpu")
    seed_everything(args.seed)
    trainer = build_trainer(args, state.num_processes, device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    out = trainer.train()
    seconds = time.perf_counter() - t0
    hist = [h for h in trainer.state.log_history if "loss" in h]
    result = {
        "recipe": args.recipe, "model": args.model, "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "processes": state.num_processes, "distributed_type": str(state.distributed_type),
        "backend": state.backend, "global_batch": args.global_batch, "grad_accum": args.grad_accum,
        "per_device_batch": trainer.args.per_device_train_batch_size, "steps": args.steps, "lr": args.lr,
        "losses": [float(h["loss"]) for h in hist], "grad_norms": [float(h.get("grad_norm", float("nan"))) for h in hist],
        "seconds": seconds, "train_samples_per_second": out.metrics.get("train_samples_per_second"),
        "peak_memory_mib": torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None,
    }
    if state.is_main_process:
        print(json.dumps({k: v for k, v in result.items() if k not in ("losses", "grad_norms")}))
        print(f"first-step loss {result['losses'][0]:.6f}, grad norm {result['grad_norms'][0]:.6f}; "
              f"{args.steps} steps in {seconds:.1f} s on {state.num_processes} process(es)")
        if args.metrics:
            args.metrics.parent.mkdir(parents=True, exist_ok=True)
            args.metrics.write_text(json.dumps(result, indent=1))
    state.wait_for_everyone()
    if state.use_distributed and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return result if state.is_main_process else None


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
