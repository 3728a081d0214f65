"""utils.tools.bench on the CPU with the tiny model: the three decoding paths agree, the tables render."""
import json

import torch

from utils.tools import bench


def test_bench_runs_on_cpu(tmp_path):
    device = torch.device("cpu")
    sp = bench.speed("tiny-sft", batch=4, new_tokens=24, dtype=torch.float32, device=device)
    rows = sp["rows"]
    assert set(rows) == {"HF generate", "course sampler, plain", "course sampler, fast"}
    assert all(r["rows identical to generate"] == "4/4" for r in rows.values())
    base = bench.baselines("tiny-sft", n=2, new_tokens=48, dtype=torch.float32, device=device, batch=8)
    assert len(base) == len(bench.LEVELS) and all(0 <= r["greedy accuracy"] <= 1 for r in base)
    md = bench.to_markdown({"device": "CPU", "speed": sp, "baselines": base})
    assert "| HF generate |" in md and "countdown" in md
    assert bench.main(["--model", "tiny-sft", "--batch", "2", "--new-tokens", "8", "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "bench.json").read_text())["device"] == "CPU"
