"""Time one GRPO step: the course's trainer (:func:`utils.rl.grpo.train_grpo`) vs TRL's ``GRPOTrainer``.

``python -m utils.tools.bench_grpo --model smollm2-135m --prompts 8 --group 8 --new-tokens 128 --steps 3 --out DIR``
runs, in one process, on the same model, task (Countdown-3 with the verifier's reward) and batch (``prompts x
group`` completions of at most ``new-tokens`` tokens), ``steps`` timed steps of each after one warm-up step, and
writes ``bench_grpo.json`` and ``bench_grpo.md`` to ``DIR``. On a GPU both run in bf16 (fp16 without bf16), on a
CPU in fp32. The steady-state step time is the median of the timed steps.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from .. import world
from ..lm.batches import default_system
from ..lm.models import load_model
from ..rl import grpo
from ..rl.common import verifier_reward
from ..runtime import gpu_dtype, seed_everything
from ..world.rewards import outcome_reward, problem_to_json, trl_reward


def _peak_reset(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak(device: str) -> float:
    return torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else float("nan")


def course_steps(model_name: str, prompts: int, group: int, new_tokens: int, steps: int, device: str,
                 dtype: torch.dtype, lr: float = 1e-6) -> dict[str, Any]:
    """``1 + steps`` steps of the course's GRPO; per-step seconds (the first is the warm-up), mean length, peak MiB."""
    seed_everything(0)
    model, tok = load_model(model_name, device=device, dtype=dtype)
    cfg = grpo.GRPOConfig(group_size=group, max_new_tokens=new_tokens, lr=lr, loss_type="dapo")
    _peak_reset(device)
    res = grpo.train_grpo(model, tok, verifier_reward, world.iter_problems("countdown", 3, "train", seed=0), 1 + steps,
                          prompts, cfg, progress=False)
    secs = res.curve("seconds")
    return {"step seconds": secs[1:], "warm-up seconds": secs[0], "median step seconds": statistics.median(secs[1:]),
            "mean completion length": statistics.mean(res.curve("length")[1:]), "peak MiB": _peak(device)}


def trl_steps(model_name: str, prompts: int, group: int, new_tokens: int, steps: int, device: str, dtype: torch.dtype,
              out_dir: Path, lr: float = 1e-6) -> dict[str, Any]:
    """The same with TRL's ``GRPOTrainer`` (``loss_type="dapo"``, its default), timed by a callback per optimizer step."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    seed_everything(0)
    model, tok = load_model(model_name, device=device, dtype=dtype)
    problems = world.sample_problems("countdown", 3, prompts * (1 + steps), split="train", seed=0)
    system = default_system(tok)
    data = Dataset.from_dict({"prompt": [p.messages(system=system or None)[:-1] for p in problems],
                              "problem": [problem_to_json(p) for p in problems]})
    times: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):  # noqa: ANN001, ANN003, D102
            if device == "cuda":
                torch.cuda.synchronize()
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):  # noqa: ANN001, ANN003, D102
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - self.t0)

    half = device == "cuda"
    args = GRPOConfig(output_dir=str(out_dir / "trl_grpo"), use_cpu=device == "cpu", bf16=half and dtype == torch.bfloat16,
                      fp16=half and dtype == torch.float16, report_to="none", save_strategy="no", logging_steps=1,
                      num_generations=group, per_device_train_batch_size=prompts * group, gradient_accumulation_steps=1,
                      max_completion_length=new_tokens, max_steps=1 + steps, learning_rate=lr, beta=0.0,
                      loss_type="dapo", gradient_checkpointing=False, temperature=1.0, shuffle_dataset=False)
    trainer = GRPOTrainer(model=model, reward_funcs=[trl_reward(outcome_reward)], args=args, train_dataset=data,
                          processing_class=tok, callbacks=[StepTimer()])
    _peak_reset(device)
    trainer.train()
    lengths = [h["completions/mean_length"] for h in trainer.state.log_history if "completions/mean_length" in h]
    return {"step seconds": times[1:], "warm-up seconds": times[0], "median step seconds": statistics.median(times[1:]),
            "mean completion length": statistics.mean(lengths[1:]) if len(lengths) > 1 else float("nan"),
            "peak MiB": _peak(device)}


def to_markdown(result: dict[str, Any]) -> str:
    """A markdown table of :func:`run`'s result."""
    b = result["batch"]
    lines = [f"GRPO step time on {result['device']} ({result['dtype']}), {result['model']}: {b['prompts']} prompts x "
             f"{b['group']} samples, at most {b['new_tokens']} new tokens; median of {b['steps']} steps after a warm-up.", "",
             "| trainer | median step (s) | warm-up (s) | mean completion length | peak MiB |", "|---|---|---|---|---|"]
    for name, r in result["rows"].items():
        lines.append(f"| {name} | {r['median step seconds']:.3f} | {r['warm-up seconds']:.3f} | "
                     f"{r['mean completion length']:.1f} | {r['peak MiB']:.0f} |")
    return "\n".join(lines) + "\n"


def run(model: str, prompts: int, group: int, new_tokens: int, steps: int, out: Path) -> dict[str, Any]:
    """Both measurements on this machine; writes ``bench_grpo.json`` and ``bench_grpo.md`` into ``out``."""
    if steps < 1:
        raise ValueError("need at least one timed step after the warm-up")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = gpu_dtype() if device == "cuda" else torch.float32
    out.mkdir(parents=True, exist_ok=True)
    rows = {"course (utils.rl.grpo)": course_steps(model, prompts, group, new_tokens, steps, device, dtype),
            "TRL GRPOTrainer": trl_steps(model, prompts, group, new_tokens, steps, device, dtype, out)}
    result = {"device": torch.cuda.get_device_name(0) if device == "cuda" else f"CPU, {torch.get_num_threads()} threads",
              "dtype": str(dtype).replace("torch.", ""), "model": model,
              "batch": {"prompts": prompts, "group": group, "new_tokens": new_tokens, "steps": steps}, "rows": rows}
    (out / "bench_grpo.json").write_text(json.dumps(result, indent=2))
    (out / "bench_grpo.md").write_text(to_markdown(result))
    return result


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("build/bench_grpo"))
    a = ap.parse_args(argv)
    result = run(a.model, a.prompts, a.group, a.new_tokens, a.steps, a.out)
    print(to_markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
