"""Regenerate the course's tiny models: ``python -m utils.lm.pretrain`` (deterministic: ~22 minutes on one CPU
core; ~20 with ``--threads 2`` on an idle 2-core machine, which gave the same bits).

Two stages, both plain PyTorch (:mod:`utils.lm.training`):

1. **Pretraining (MLE, survey §2)** on a synthetic corpus written like a textbook: worked Countdown
   and addition solutions, string exercises and arithmetic facts, e.g.
   ``use 3 5 7 to make 26: 7*3=21,21+5=26 so (7*3)+5``. The result, ``tiny-base``, knows the world but
   not the chat format.
2. **Chat SFT (survey §4.1-4.3)** on conversations in the course's format with loss on assistant
   tokens only. The result is ``tiny-sft``. Countdown with 5 numbers and addition with 5+ digits are
   held out of SFT (they are seen in pretraining only or not at all) to leave room for later chapters.

Only training-split problems are used (the split is a hash of the problem, see :mod:`utils.world`).
"""
from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Iterator

import torch

from .. import world
from ..world.countdown import OPS, apply_op
from .batches import pack_documents, sft_batch
from .models import DATA, count_parameters, new_tiny_model, save_model
from .training import train_lm

#: (family, level, weight) mixtures
BASE_MIX = [("countdown", 2, 0.05), ("countdown", 3, 0.2), ("countdown", 4, 0.17), ("countdown", 5, 0.08),
            ("addition", 1, 0.03), ("addition", 2, 0.05), ("addition", 3, 0.06), ("addition", 4, 0.08),
            ("strings", 1, 0.06), ("strings", 2, 0.07), ("strings", 3, 0.07), ("facts", 0, 0.08)]
SFT_MIX = [("countdown", 2, 0.05), ("countdown", 3, 0.33), ("countdown", 4, 0.2),
           ("addition", 1, 0.02), ("addition", 2, 0.04), ("addition", 3, 0.06), ("addition", 4, 0.08),
           ("strings", 1, 0.07), ("strings", 2, 0.08), ("strings", 3, 0.07)]


def textbook_prompt(p: world.Problem) -> str:
    """The question part of :func:`textbook`: ``use 3 5 7 to make 26:`` (with a dialogue's history first)."""
    history = "".join(f"{u}: {a}. " for u, a in p.meta.get("history", ()))
    return f"{history}{p.prompt}:"


def textbook(p: world.Problem) -> str:
    """A problem and its worked solution as plain pretraining text (no chat markers, no tags)."""
    body = f"{','.join(p.steps)} so {p.answer}" if p.steps else p.answer
    return f"{textbook_prompt(p)} {body}"


def arithmetic_facts(rng: random.Random, n: int = 8) -> str:
    """``n`` random true facts like ``7*4=28`` over the values Countdown produces."""
    facts = []
    while len(facts) < n:
        a, b, op = rng.randint(1, 50), rng.randint(1, 12), rng.choice(OPS)
        if op in "+*" and rng.random() < 0.5:
            a, b = b, a
        r = apply_op(a, op, b)
        if r is not None and r <= 200:
            facts.append(f"{a}{op}{b}={r}")
    return ",".join(facts)


def _mixture_stream(mix: list[tuple[str, int, float]], seed: int) -> Iterator[tuple[str, world.Problem | None]]:
    rng = random.Random(seed)
    streams = {(f, l): world.iter_problems(f, l, "train", seed) for f, l, _ in mix if f != "facts"}
    names, weights = [(f, l) for f, l, _ in mix], [w for _, _, w in mix]
    while True:
        f, l = rng.choices(names, weights)[0]
        if f == "facts":
            yield arithmetic_facts(rng), None
        else:
            p = next(streams[(f, l)])
            yield textbook(p), p


def pretraining_docs(seed: int = 0) -> Iterator[str]:
    """The endless pretraining corpus (deterministic for a seed)."""
    for text, _ in _mixture_stream(BASE_MIX, seed):
        yield text


def sft_mixture(n: int, seed: int = 0) -> list[list[dict[str, str]]]:
    """``n`` chat conversations (chain-of-thought answers) from the SFT mixture."""
    out = []
    for _, p in _mixture_stream(SFT_MIX, seed + 1):
        assert p is not None
        out.append(p.messages(cot=True))
        if len(out) == n:
            return out
    raise AssertionError("unreachable")


def pretrain_base(steps: int, batch_size: int = 64, block_size: int = 128, lr: float = 3e-3, seed: int = 0):
    """Stage 1: MLE pretraining from random initialisation. Returns ``(model, tok, losses)``."""
    model, tok = new_tiny_model(seed)
    blocks = pack_documents(tok, pretraining_docs(seed), block_size, steps * batch_size)
    losses = train_lm(model, lambda s: {"input_ids": blocks[s * batch_size : (s + 1) * batch_size]}, steps, lr=lr,
                      warmup=min(100, steps // 10 + 1), weight_decay=0.01, desc="pretraining")
    return model, tok, losses


def chat_sft(model, tok, steps: int, batch_size: int = 64, lr: float = 1e-3, seed: int = 0) -> list[float]:
    """Stage 2: SFT on chat conversations, loss on assistant tokens only. Trains ``model`` in place."""
    convs = sft_mixture(steps * batch_size, seed)
    return train_lm(model, lambda s: sft_batch(tok, convs[s * batch_size : (s + 1) * batch_size]), steps, lr=lr,
                    warmup=min(20, steps // 10 + 1), desc="chat SFT")


def save(model, tok, path: Path, info: dict) -> None:
    """:func:`utils.lm.models.save_model`, plus the run's record ``training.json`` (steps, seconds, losses)."""
    save_model(model, tok, path)
    (path / "training.json").write_text(json.dumps(info, indent=1))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DATA, help="folder to write tiny-base/ and tiny-sft/ into")
    ap.add_argument("--base-steps", type=int, default=800)
    ap.add_argument("--sft-steps", type=int, default=400)
    ap.add_argument("--threads", type=int, default=1, help="1 is robust when other processes share the CPU")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    model, tok, base_losses = pretrain_base(args.base_steps, seed=args.seed)
    t_base = time.time() - t0
    info = {"params": count_parameters(model), "base_steps": args.base_steps, "seed": args.seed,
            "base_seconds": round(t_base), "base_loss_last50": sum(base_losses[-50:]) / 50,
            "base_losses": [round(x, 4) for x in base_losses]}
    save(model, tok, args.out / "tiny-base", info)
    sft_losses = chat_sft(model, tok, args.sft_steps, seed=args.seed)
    info.update(sft_steps=args.sft_steps, sft_seconds=round(time.time() - t0 - t_base),
                sft_losses=[round(x, 4) for x in sft_losses])
    save(model, tok, args.out / "tiny-sft", info)
    print(f"done in {time.time() - t0:.0f} s; base loss {info['base_loss_last50']:.3f}, sft loss {sum(sft_losses[-20:]) / 20:.3f}")


if __name__ == "__main__":
    main()
