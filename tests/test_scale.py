"""The scale-out scripts (``utils.tools.scale``): the distributed code path, tested without GPUs.

Each recipe runs once as one process and once as two CPU processes over gloo, launched by Accelerate with the
same global batch. Accelerate 1.15's ``launch --cpu`` starts a single process whatever ``--num_processes`` says
(its simple launcher), so the two-process run uses its torchrun launcher (``--multi_gpu``) with the script's
own ``--cpu``: each rank then builds ``PartialState(cpu=True)`` and Accelerate picks ``MULTI_CPU`` with gloo.

Tolerance: both runs sum the same fp32 terms, in a different order (two shards, then an all-reduce); the
differences measured were ≤ 3e-7 relative, and 1e-4 leaves ~300× that.
"""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from utils.tools.scale import RECIPES, per_device_batch

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(recipe: str, processes: int, out: Path, *extra: str) -> dict:
    script = ["-m", "utils.tools.scale", recipe, "--cpu", "--steps", "2", "--metrics", str(out), *extra]
    if processes == 1:
        cmd = [sys.executable, *script]
    else:
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(_free_port()), *script]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "CUDA_VISIBLE_DEVICES": ""}
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(out.read_text())


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


@pytest.mark.parametrize("recipe", ["sft", "dpo"])
def test_two_processes_take_the_same_steps_as_one(recipe, tmp_path):
    one = _run(recipe, 1, tmp_path / "one.json", "--global-batch", "8")
    two = _run(recipe, 2, tmp_path / "two.json", "--global-batch", "8")
    assert (one["processes"], one["per_device_batch"]) == (1, 8)
    assert (two["processes"], two["per_device_batch"], two["backend"]) == (2, 4, "gloo")
    assert "MULTI_CPU" in two["distributed_type"]
    # step 1: the loss (DPO's is log 2 by construction: the policy starts as its reference) and the all-reduced
    # gradient's norm; step 2: the loss after one optimizer step, which only agrees if the update did
    if recipe == "sft":
        assert _rel(one["losses"][0], two["losses"][0]) < TOL, (one["losses"], two["losses"])
    assert _rel(one["grad_norms"][0], two["grad_norms"][0]) < TOL, (one["grad_norms"], two["grad_norms"])
    assert _rel(one["losses"][1], two["losses"][1]) < TOL, (one["losses"], two["losses"])
    assert one["losses"][1] != one["losses"][0]   # the second step saw an updated model (and other examples)


def test_grpo_runs_on_two_processes(tmp_path):
    """GRPO samples its completions in each process, so the two runs see different samples: no equality, but the
    recipe must run distributed, with each process holding whole groups (16 completions = 2 × 8 = 4 groups of 4)."""
    two = _run("grpo", 2, tmp_path / "two.json", "--global-batch", "16", "--group", "4")
    assert (two["processes"], two["per_device_batch"]) == (2, 8)
    assert len(two["losses"]) == 2 and all(abs(x) < 10 for x in two["losses"])
    assert all(g == g and g >= 0 for g in two["grad_norms"])   # finite (not NaN), non-negative


def test_per_device_batch():
    assert per_device_batch(32, 2, 2) == 8
    assert per_device_batch(16, 2, 1, group=4) == 8
    with pytest.raises(ValueError, match="does not split"):
        per_device_batch(10, 4, 1)
    with pytest.raises(ValueError, match="multiple of the group size"):
        per_device_batch(18, 1, 1, group=4)
    with pytest.raises(ValueError, match="positive"):
        per_device_batch(8, 0, 1)


def test_unknown_recipe_is_a_clear_error():
    r = subprocess.run([sys.executable, "-m", "utils.tools.scale", "ppo", "--cpu"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode != 0 and "invalid choice: 'ppo'" in r.stderr
    assert set(RECIPES) == {"sft", "dpo", "grpo"}
