"""GPU-only checks of the fast sampling path (skipped without CUDA; run them on a GPU machine with
``python -m pytest tests/test_gpu.py``). CI has no GPU: these ran on the project's H200 (see README)."""
import time

import pytest
import torch

from utils.lm import build_prompts, generation, load_model, sample
from utils.world import sample_problems

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def tiny_cuda():
    return load_model("tiny-sft", device="cuda")


def test_cuda_graph_path_equals_plain_path(tiny_cuda, monkeypatch):
    m, tok = tiny_cuda
    steps = []
    real = generation._DecodeStep

    class Spy(real):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            steps.append(self)
    monkeypatch.setattr(generation, "_DecodeStep", Spy)
    prompts = build_prompts(tok, sample_problems("countdown", 3, 40, "test") + sample_problems("addition", 3, 20, "test"))
    for temperature in (0.0, 1.0):
        kw = dict(n=2, max_new_tokens=64, temperature=temperature, seed=1, batch_size=48)
        plain, fast = sample(m, tok, prompts, fast=False, **kw), sample(m, tok, prompts, fast=True, **kw)
        assert plain.texts == fast.texts
        assert torch.equal(plain.completion_ids, fast.completion_ids)
        assert torch.allclose(plain.logprobs, fast.logprobs, atol=1e-4)
    assert steps and all(s.graph is not None for s in steps), "the decode step was not captured as a CUDA graph"
    assert generation.fast_generation_default(m)


def test_cuda_graph_path_is_faster(tiny_cuda):
    m, tok = tiny_cuda
    prompts = build_prompts(tok, sample_problems("countdown", 4, 64, "test"))

    def run(fast):
        sample(m, tok, prompts, max_new_tokens=64, temperature=1.0, seed=0, fast=fast)  # warm-up
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        sample(m, tok, prompts, max_new_tokens=64, temperature=1.0, seed=0, fast=fast)
        torch.cuda.synchronize()
        return time.perf_counter() - t0
    plain, fast = run(False), run(True)
    print(f"tiny-sft, 64 x 64 tokens: plain {plain:.3f} s, fast {fast:.3f} s ({plain / fast:.1f}x)")
    assert fast < plain / 1.5
