"""Measure generation speed and model baselines on the machine at hand (meant for a GPU).

``python -m utils.tools.bench`` runs, in one process:

1. **speed**: the same model, batch and prompts decoded greedily by every path of :data:`PATHS`: ``transformers``'
   ``generate`` with its default (dynamic) cache and with ``cache_implementation="static"`` (which compiles the
   forward on CUDA), and the course's sampler plain, fast (static cache + CUDA graph) and fast + compile; tokens
   per second, ms per step, the cold first call (capture, compile) apart from the warm runs, peak memory, and
   how many rows equal ``generate``'s. When the run is not in fp32 (bf16 on a GPU), a second, smaller run checks
   the same agreement in fp32, where the paths should give identical tokens (``--check-dtype``).
   ``--random-weights`` uses the architecture of ``--model`` with random weights (every row runs the full length);
2. **baselines** (``--baselines``): greedy accuracy of the model on each level of the course's world, the
   numbers that decide where RL needs a cold start (a level it scores 0 on gives RL no reward to learn from);
3. **memory** (``--arch``): a training step (AdamW, full fine-tuning) and generation of randomly initialised
   models with the larger ``gpu`` architectures from ``data/configs``, to check the 14 GiB budget.

Results go to ``--out`` (JSON + a markdown table). Example::

    python -m utils.tools.bench --model smollm2-135m --batch 64 --new-tokens 256 --baselines --arch qwen2.5-0.5b --out build/bench
    python -m utils.tools.bench --model smollm2-135m --random-weights --out build/bench-random
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any, Callable

import torch

from .. import world
from ..lm import generation
from ..lm.generation import build_prompts, sample, sample_batch_static
from ..lm.models import load_model, load_tokenizer, random_model
from ..runtime import gpu_dtype, grad_scaler, seed_everything

LEVELS = [("countdown", 3), ("countdown", 4), ("countdown", 5), ("addition", 2), ("addition", 3), ("addition", 4),
          ("addition", 5), ("strings", 1), ("strings", 2), ("strings", 3)]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(fn: Callable[[], Any], device: torch.device) -> tuple[Any, float, float]:
    """Run ``fn`` once; return (result, seconds, peak MiB allocated on CUDA during it, else nan)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    secs = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else float("nan")
    return out, secs, peak


def _cut(ids: list[int], stops: set[int]) -> list[int]:
    """Tokens up to and including the first stop token."""
    for i, t in enumerate(ids):
        if t in stops:
            return ids[: i + 1]
    return ids


PATHS = ("HF generate", "HF generate, static cache", "course sampler, plain", "course sampler, fast (CUDA graph)",
         "course sampler, fast + compile")


def speed(
    model_name: str, batch: int, new_tokens: int, dtype: torch.dtype, device: torch.device, repeats: int = 1,
    random_weights: bool = False, paths: tuple[str, ...] = PATHS,
) -> dict[str, Any]:
    """Greedy decoding of ``batch`` Countdown prompts by each of ``paths`` (:data:`PATHS`); see the module docstring.

    Each path runs once at full length cold (its "first call": kernels, cuBLAS handles, the CUDA-graph capture and,
    for the compiled paths, ``torch.compile``), then ``repeats`` times warm; the best warm run is reported, and
    "warm-up s" is the first call's time minus it. ``repeats=0`` times the first call only (an agreement check).
    ``random_weights``: the architecture of ``model_name`` from ``data/configs`` with random weights (its tokenizer
    is the real one, from :func:`utils.lm.models.load_tokenizer`: SmolLM2's ships in ``data/``); it rarely emits the end token, so every row decodes all ``new_tokens`` steps.
    """
    if random_weights:  # the shipped tokenizer (data/smollm2-tokenizer for SmolLM2): no model file is read
        tok = load_tokenizer(model_name)
        seed_everything(0)
        model = random_model(model_name, device=str(device), dtype=dtype).eval()
        model.generation_config.pad_token_id = tok.pad_token_id
    else:
        model, tok = load_model(model_name, device=str(device), dtype=dtype)
    problems = world.sample_problems("countdown", 3, batch, split="test", seed=0)
    prompts = build_prompts(tok, problems)
    stops = {tok.eos_token_id, tok.pad_token_id} - {None}
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)

    def hf(static: bool) -> Callable[[], list[list[int]]]:
        extra = {"cache_implementation": "static"} if static else {}

        def run() -> list[list[int]]:
            out = model.generate(**enc, max_new_tokens=new_tokens, do_sample=False, eos_token_id=sorted(stops),
                                 pad_token_id=tok.pad_token_id, top_p=None, top_k=None, temperature=None, **extra)
            return [_cut(r.tolist(), stops) for r in out[:, enc["input_ids"].shape[1]:]]
        return run

    def ours(fast: bool, compiled: bool) -> Callable[[], list[list[int]]]:
        def run() -> list[list[int]]:
            s = sample(model, tok, prompts, n=1, max_new_tokens=new_tokens, temperature=0.0, batch_size=batch, fast=fast,
                       compiled=compiled)
            return [r[: int(n)].tolist() for r, n in zip(s.completion_ids, s.lengths)]
        return run

    runners = dict(zip(PATHS, (hf(False), hf(True), ours(False, False), ours(True, False), ours(True, True))))
    rows: dict[str, dict[str, Any]] = {}
    outputs: dict[str, list[list[int]]] = {}
    for name in paths:
        try:
            rows[name], outputs[name] = _measure(runners[name], device, batch, repeats)
        except Exception as err:  # noqa: BLE001 - one failing path must not hide the others' numbers
            rows[name] = {"error": f"{type(err).__name__}: {str(err)[:200]}"}
            continue
        if name == "course sampler, fast + compile":
            rows[name]["compile check rel. error"] = f"{generation.last_decode.get('check_error') or 0:.1e}"
        print(f"[bench] {name}: {rows[name]['seconds']} s warm, first call {rows[name]['first call s']} s", flush=True)
    ref = outputs.get("HF generate")
    for name in outputs:
        if ref is not None:
            same = sum(a == b for a, b in zip(outputs[name], ref))
            rows[name]["rows identical to generate"] = f"{same}/{batch}"
            rows[name]["logit margin at first difference (median)"] = _divergence_margin(model, enc, ref, outputs[name])
    for base, col in (("HF generate", "speed-up vs generate"), ("HF generate, static cache", "speed vs HF static")):
        if base in outputs:
            for name in outputs:
                rows[name][col] = round(rows[base]["seconds"] / rows[name]["seconds"], 2)
    name = model_name + (" (random weights)" if random_weights else "")
    return {"model": name, "dtype": str(dtype).split(".")[-1], "batch": batch, "max new tokens": new_tokens,
            "compile": "/".join(generation.compile_settings()), "rows": rows}


def _measure(fn: Callable[[], list[list[int]]], device: torch.device, batch: int, repeats: int) -> tuple[dict[str, Any], list[list[int]]]:
    """One path: a cold first call, then the best of ``repeats`` warm calls; the row of numbers and the tokens."""
    out, first, peak = _timed(fn, device)
    warm = [_timed(fn, device) for _ in range(repeats)]
    out, secs, peak = min(warm, key=lambda r: r[1]) if warm else (out, first, peak)
    steps = max(len(r) for r in out)
    row = {"seconds": round(secs, 3), "decode steps": steps, "tokens/s (batch x steps)": round(batch * steps / secs),
           "generated tokens/s": round(sum(map(len, out)) / secs), "ms per step": round(1000 * secs / steps, 2),
           "first call s": round(first, 2), "warm-up s": round(max(first - secs, 0.0), 2) if repeats else "-",
           "peak MiB": round(peak, 1)}
    return row, out


@torch.no_grad()
def _divergence_margin(model: torch.nn.Module, enc: Any, ref: list[list[int]], out: list[list[int]]) -> str:
    """Where a row differs from the reference, how close was the call? The gap between the two tokens' logits
    at the first differing step, given the shared prefix (a near-tie is a rounding effect, not a bug)."""
    margins = []
    for i, (a, b) in enumerate(zip(ref, out)):
        j = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), None)
        if j is None:
            continue
        keep = enc["attention_mask"][i].bool()
        ids = torch.cat([enc["input_ids"][i][keep], torch.tensor(a[:j], device=keep.device, dtype=torch.long)])[None]
        logits = model(input_ids=ids).logits[0, -1].float()
        margins.append(abs(float(logits[a[j]] - logits[b[j]])))
    if not margins:
        return "-"
    margins.sort()
    return f"{margins[len(margins) // 2]:.3f} ({len(margins)} rows)"


def baselines(model_name: str, n: int, new_tokens: int, dtype: torch.dtype, device: torch.device, batch: int) -> list[dict[str, Any]]:
    """Greedy accuracy and format rate of ``model_name`` on ``n`` test problems of each level in :data:`LEVELS`."""
    model, tok = load_model(model_name, device=str(device), dtype=dtype)
    rows = []
    for fam, lvl in LEVELS:
        probs = world.sample_problems(fam, lvl, n, split="test", seed=0)
        s = sample(model, tok, build_prompts(tok, probs), max_new_tokens=new_tokens, temperature=0.0, batch_size=batch)
        acc = sum(world.score(p, t) for p, t in zip(probs, s.texts)) / len(probs)
        fmt = sum(world.parse_completion(t).answer is not None for t in s.texts) / len(probs)
        rows.append({"family": fam, "level": lvl, "n": len(probs), "greedy accuracy": round(acc, 3), "format rate": round(fmt, 3),
                     "example": s.texts[0][:160]})
    return rows


def arch_memory(arch: str, dtype: torch.dtype, device: torch.device, batch: int, length: int) -> dict[str, Any]:
    """Peak memory of one AdamW full fine-tuning step (autocast) and of fast generation, random weights."""
    seed_everything(0)
    model = random_model(arch, device=str(device), dtype=torch.float32)
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    ids = torch.randint(0, model.config.vocab_size, (batch, length), device=device)

    scaler = grad_scaler(dtype, device.type)  # fp16 (a T4) needs loss scaling; bf16 and fp32 do not

    def train_step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=device.type == "cuda"):
            loss = model(input_ids=ids, labels=ids).loss
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        opt.zero_grad(set_to_none=True)

    train_step()
    _, secs, peak = _timed(train_step, device)
    opt.state.clear()  # free AdamW's moments before measuring generation
    model = model.to(dtype)
    model.eval()
    prompt = torch.randint(0, model.config.vocab_size, (64, 64), device=device)
    mask = torch.ones_like(prompt)
    def gen() -> None:
        sample_batch_static(model, prompt, mask, 256, 1.0, 1.0, [-1], 0, None)

    gen()
    _, gsecs, gpeak = _timed(gen, device)
    return {"arch": arch, "parameters (M)": round(n_params / 1e6, 1), "train step": f"full FT, AdamW, {batch}x{length}, autocast {str(dtype).split('.')[-1]}",
            "train step s": round(secs, 3), "train peak MiB": round(peak, 1),
            "fast generation 64x256 s": round(gsecs, 2), "generation peak MiB": round(gpeak, 1)}


def to_markdown(result: dict[str, Any]) -> str:
    """The tables of a result, as markdown."""
    out = [f"# Benchmark on {result['device']}", ""]
    for key, what in (("speed", "Greedy decoding"), ("agreement", "Greedy agreement check")):
        sp = result.get(key)
        if not sp:
            continue
        out += [f"## {what}: {sp['model']}, {sp['dtype']}, batch {sp['batch']}, up to {sp['max new tokens']} new tokens"
                f" (compiled path: {sp.get('compile', '?')})", ""]
        cols = list(dict.fromkeys(c for r in sp["rows"].values() for c in r))
        out += ["| path | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
        out += [f"| {name} | " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for name, r in sp["rows"].items()]
        out.append("")
    for key, title in [("baselines", "Baselines per level (greedy, test split)"), ("arch", "Larger architectures, random weights")]:
        rows = result.get(key)
        if rows:
            cols = [c for c in rows[0] if c != "example"]
            out += [f"## {title}", "", "| " + " | ".join(cols) + " |", "|---" * len(cols) + "|"]
            out += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
            out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--random-weights", action="store_true", help="the architecture of --model with random weights")
    ap.add_argument("--repeats", type=int, default=1, help="warm timed runs per path after the cold first call")
    ap.add_argument("--check-dtype", choices=["auto", "none", "float32"], default="auto",
                    help="a second, smaller run for greedy agreement in that dtype; auto: float32 when --dtype is not")
    ap.add_argument("--check-batch", type=int, default=32)
    ap.add_argument("--check-new-tokens", type=int, default=128)
    ap.add_argument("--check-hf-static", action="store_true", help="include HF's static-cache generate in the check run")
    ap.add_argument("--compile-mode", default=None, help="COURSE_COMPILE_MODE for the compiled path (default: 'default')")
    ap.add_argument("--baselines", action="store_true")
    ap.add_argument("--n-baseline", type=int, default=100)
    ap.add_argument("--arch", nargs="*", default=[])
    ap.add_argument("--out", default="build/bench")
    ap.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16"], default="auto",
                    help="auto: bf16 on GPUs that have it, else fp16; fp32 on CPU")
    args = ap.parse_args(argv)
    if args.compile_mode:
        os.environ["COURSE_COMPILE_MODE"] = args.compile_mode
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = gpu_dtype() if device.type == "cuda" else torch.float32
    if args.dtype != "auto":
        dtype = getattr(torch, args.dtype)
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU"
    result: dict[str, Any] = {"device": name, "torch": torch.__version__}
    if not args.no_speed:
        result["speed"] = speed(args.model, args.batch, args.new_tokens, dtype, device, args.repeats, args.random_weights)
        print(to_markdown(result), flush=True)
        check = {"auto": torch.float32 if dtype != torch.float32 else None, "none": None, "float32": torch.float32}[args.check_dtype]
        if check is not None:
            paths = tuple(p for p in PATHS if args.check_hf_static or p != "HF generate, static cache")
            result["agreement"] = speed(args.model, args.check_batch, args.check_new_tokens, check, device, 0,
                                        args.random_weights, paths)
    if args.baselines:
        result["baselines"] = baselines(args.model, args.n_baseline, args.new_tokens, dtype, device, args.batch)
    if args.arch:
        result["arch"] = [arch_memory(a, torch.float16 if device.type == "cuda" else torch.float32, device, 4, 512) for a in args.arch]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(result, indent=1))
    (out / "bench.md").write_text(to_markdown(result))
    print(to_markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
