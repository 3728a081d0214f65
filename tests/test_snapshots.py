"""Regression snapshots: what the world, the tokenizer and the tiny model produce, recorded once.

Refactors of ``utils/`` must leave every one of these values unchanged: a move or a merge that changes one
has changed behaviour.

* Integers and strings (problems, token ids, greedy and seeded samples, labels, rewards) must match exactly.
* Floats (log-probs, losses) must match to a relative 1e-4 (``rel=1e-4`` in :func:`_close`): the tiny model
  is fp32 and 4 layers deep, so kernels with another reduction order (AVX2 vs AVX-512, 1 vs 2 threads,
  ``ATEN_CPU_CAPABILITY=default``) move a log-prob by ~1e-6 relative, while any real change (another mask,
  another token, another learning rate) moves it by far more than 1e-4.

Re-record (only after a deliberate change of behaviour, and say so in the commit):
``COURSE_PROFILE=smoke .venv/bin/python tests/test_snapshots.py --record``.
"""
from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = ROOT / "tests" / "snapshots" / "tiny.json"
REL = 1e-4


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def _ids(t) -> list[list[int]]:
    return [[int(x) for x in row] for row in t.tolist()]


def compute() -> dict[str, Any]:
    """Every snapshot value, computed with the course's current API."""
    import torch

    from utils.lm import build_prompts, completion_logprobs, evaluate, load_model, mle_loss, sample, sft_batch, train_lm
    from utils.lm.batches import marker_batch, prefix_batch
    from utils.rl import policy_gradient as pg
    from utils.sft import fine_tune, problem_batches, train_sft
    from utils.world import preferences, rewards, sample_problems

    out: dict[str, Any] = {}
    # the world (pure Python)
    probs = {f"{f}-{lv}": sample_problems(f, lv, 5, split=s, seed=3)
             for f, lv in [("countdown", 3), ("countdown", 4), ("addition", 3), ("strings", 2)] for s in ("train", "test")}
    out["world"] = _digest({k: [(p.prompt, p.answer, list(p.steps)) for p in v] for k, v in probs.items()})
    cd = sample_problems("countdown", 3, 6, split="test", seed=1)
    bad = ["<think>1+2=3,3*9=27</think><answer>(1+2)*9</answer>", None, "<answer>", 42,
           cd[0].completion(), cd[1].completion().replace("=", "+", 1)]
    out["rewards"] = [[rewards.outcome_reward(p, c), rewards.format_reward(p, c), rewards.process_rewards(p, c)]
                      for p in cd for c in bad]
    pairs = preferences.preference_pairs(cd, pairs_per_problem=2, tau=0.2, seed=0)
    out["preferences"] = _digest([(x.chosen, x.rejected, x.chosen_reward, x.rejected_reward) for x in pairs])

    # the tiny model
    model, tok = load_model("tiny-sft")
    prompts = build_prompts(tok, cd[:4])
    out["prompt_ids"] = _digest([tok(p, add_special_tokens=False)["input_ids"] for p in prompts])
    greedy = sample(model, tok, prompts, n=1, max_new_tokens=40, temperature=0.0)
    out["greedy_ids"] = _ids(greedy.completion_ids * greedy.completion_mask)
    seeded = sample(model, tok, prompts, n=2, max_new_tokens=40, temperature=1.0, seed=7)
    out["seeded_ids"] = _ids(seeded.completion_ids * seeded.completion_mask)
    out["seeded_logprob_sums"] = seeded.logprobs.sum(-1).tolist()
    with torch.no_grad():
        lp = completion_logprobs(model, seeded.prompt_ids, seeded.prompt_mask, seeded.completion_ids,
                                 seeded.completion_mask)
    out["teacher_forced_sums"] = lp.logprobs.sum(-1).tolist()

    # SFT batches and losses
    convs = [p.messages(cot=True) for p in cd]
    b1 = marker_batch(tok, convs)
    b2 = prefix_batch(tok, convs, mode="assistant")
    out["labels_marker"] = _digest(_ids(b1["labels"]))
    out["labels_prefix"] = _digest(_ids(b2["labels"]))
    dial = sample_problems("strings", 2, 12, split="train", seed=4)
    b3 = sft_batch(tok, [p.messages(cot=False) for p in dial], mode="last")
    out["labels_last_turn"] = _digest(_ids(b3["labels"]))
    with torch.no_grad():
        out["mle_loss"] = float(mle_loss(model(input_ids=b1["input_ids"], attention_mask=b1["attention_mask"]).logits,
                                         b1["labels"]))
    add = sample_problems("addition", 3, 8, split="train", seed=0)
    batches = problem_batches(tok, add, batch_size=4, seed=0)
    out["peft_batch_labels"] = _digest([_ids(batches(s)["labels"]) for s in range(3)])
    # a short training run (AdamW, cosine schedule): its losses
    torch.manual_seed(0)
    model2, _ = load_model("tiny-base")
    out["train_losses"] = train_lm(model2, batches, steps=4, lr=1e-3, warmup=1, desc="snapshot")
    # SFT loops, evaluation and advantages
    model3, _ = load_model("tiny-base")
    out["fine_tune_losses"] = fine_tune(model3, tok, convs, steps=2, batch_size=3, lr=1e-3, seed=1, desc="snapshot")
    model4, _ = load_model("tiny-base")
    out["train_sft_losses"] = train_sft(model4, tok, convs, steps=2, batch_size=4, lr=1e-3, warmup=1, grad_accum=2,
                                        desc="snapshot")
    res = evaluate(model, tok, sample_problems("countdown", 3, 8, split="test", seed=5), n_samples=2,
                   max_new_tokens=40, ks=(1, 2), progress=False)
    out["evaluate_greedy"] = res.greedy.tolist()
    out["evaluate_samples"] = res.samples.tolist()
    r = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0])
    out["advantages"] = {m: pg.advantages(r, m, 4).tolist() for m in ("none", "batch_mean", "group_mean", "leave_one_out")}
    return out


def _close(want: Any, got: Any, path: str) -> None:
    if isinstance(want, float) or isinstance(got, float):
        assert math.isclose(want, got, rel_tol=REL, abs_tol=1e-9), f"{path}: {got} != {want} (rel {REL})"
    elif isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), f"{path}: keys {sorted(got)} != {sorted(want)}"
        for k in want:
            _close(want[k], got[k], f"{path}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{path}: length {len(got)} != {len(want)}"
        for i, (a, b) in enumerate(zip(want, got)):
            _close(a, b, f"{path}[{i}]")
    else:
        assert want == got, f"{path}: {got!r} != {want!r}"


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return compute()


@pytest.mark.parametrize("key", sorted(json.loads(SNAPSHOT.read_text())) if SNAPSHOT.exists() else [])
def test_snapshot_unchanged(values, key):
    want = json.loads(SNAPSHOT.read_text())[key]
    _close(want, values[key], key)


def test_snapshot_file_exists():
    assert SNAPSHOT.exists(), "record it: python tests/test_snapshots.py --record"
    assert set(json.loads(SNAPSHOT.read_text())) >= {"greedy_ids", "seeded_ids", "mle_loss", "train_losses"}


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    if "--record" in sys.argv:
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(compute(), indent=1, sort_keys=True) + "\n")
        print(f"wrote {SNAPSHOT}")
