"""utils.tools.bench on the CPU with the tiny model: the decoding paths agree, the tables render."""
import json

import torch

from utils.tools import bench


def test_bench_runs_on_cpu(tmp_path, monkeypatch):
    # the compiled path on CPU through dynamo's aot_eager backend: the bench's code path without a C++ compiler
    monkeypatch.setenv("COURSE_COMPILE_BACKEND", "aot_eager")
    device = torch.device("cpu")
    sp = bench.speed("tiny-sft", batch=4, new_tokens=24, dtype=torch.float32, device=device)
    rows = sp["rows"]
    assert list(rows) == list(bench.PATHS)
    assert all("error" not in r for r in rows.values()), rows
    assert all(r["rows identical to generate"] == "4/4" for r in rows.values())
    assert all(r["first call s"] > 0 and r["seconds"] > 0 and r["ms per step"] > 0 for r in rows.values())
    assert rows["HF generate, static cache"]["speed vs HF static"] == 1.0
    assert float(rows["course sampler, fast + compile"]["compile check rel. error"]) <= 1e-4
    base = bench.baselines("tiny-sft", n=2, new_tokens=48, dtype=torch.float32, device=device, batch=8)
    assert len(base) == len(bench.LEVELS) and all(0 <= r["greedy accuracy"] <= 1 for r in base)
    md = bench.to_markdown({"device": "CPU", "speed": sp, "baselines": base})
    assert "| HF generate |" in md and "| course sampler, fast + compile |" in md and "countdown" in md
    args = ["--model", "tiny-sft", "--batch", "2", "--new-tokens", "8", "--out", str(tmp_path), "--check-dtype", "float32",
            "--dtype", "float32", "--check-batch", "2", "--check-new-tokens", "6"]
    assert bench.main(args) == 0
    result = json.loads((tmp_path / "bench.json").read_text())
    assert result["device"] == "CPU" and "HF generate, static cache" not in result["agreement"]["rows"]
    assert all(r["rows identical to generate"] == "2/2" for r in result["agreement"]["rows"].values())
    assert "Greedy agreement check" in (tmp_path / "bench.md").read_text()


def test_bench_random_weights_branch(monkeypatch):
    """--random-weights swaps in the architecture with random weights (here a fresh tiny model, to stay quick)."""
    from utils.lm.models import new_tiny_model
    monkeypatch.setenv("COURSE_COMPILE_BACKEND", "aot_eager")
    monkeypatch.setattr(bench, "random_model", lambda name, device, dtype: new_tiny_model(seed=1)[0].to(device=device, dtype=dtype))
    sp = bench.speed("tiny-sft", batch=2, new_tokens=8, dtype=torch.float32, device=torch.device("cpu"), repeats=0,
                     random_weights=True, paths=("HF generate", "course sampler, fast + compile"))
    assert sp["model"] == "tiny-sft (random weights)" and list(sp["rows"]) == ["HF generate", "course sampler, fast + compile"]
    assert all(r["rows identical to generate"] == "2/2" and r["decode steps"] == 8 for r in sp["rows"].values()), sp["rows"]
    assert sp["rows"]["course sampler, fast + compile"]["warm-up s"] == "-"
