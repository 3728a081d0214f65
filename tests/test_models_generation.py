"""Model loading (tiny, SmolLM2 offline, random architectures) and our sampler."""
import os
import shutil

import pytest
import torch

from utils.lm import build_prompts, models, sample
from utils.world import sample_problems


def test_tiny_models_load_and_are_small():
    for name in ("tiny-base", "tiny-sft"):
        m, tok = models.load_model(name)
        n = models.count_parameters(m)
        assert 0.5e6 < n < 10e6 and m.config.model_type == "llama"
        assert tok.chat_template and "{% generation %}" in tok.chat_template
    sizes = [p.stat().st_size for d in models.TINY.values() for p in d.iterdir()]
    assert sum(sizes) < 20 * 2**20


def test_unknown_models_give_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown model"):
        models.resolve("gpt-17")
    with pytest.raises(ValueError, match="COURSE_ONLINE"):
        models.resolve("qwen2.5-0.5b")
    with pytest.raises(FileNotFoundError, match="config.json"):
        models.resolve(str(tmp_path))
    with pytest.raises(ValueError, match="known"):
        models.random_model("gpt-17")


def test_missing_tiny_checkpoint_says_how_to_regenerate(monkeypatch, tmp_path):
    monkeypatch.setitem(models.TINY, "tiny-sft", tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="utils.lm.pretrain"):
        models.resolve("tiny-sft")


@pytest.mark.parametrize("arch,params", [("smollm2-135m", 134.5e6), ("smollm2-360m", 361.8e6), ("qwen2.5-0.5b", 494.0e6)])
def test_random_architectures(arch, params):
    m = models.random_model(arch, device="meta")
    assert models.count_parameters(m) == pytest.approx(params, rel=0.01)


def test_smollm2_offline_answers_a_simple_question():
    m, tok = models.load_model("smollm2-135m")
    assert models.count_parameters(m) == pytest.approx(134.5e6, rel=0.01)
    msgs = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    out = sample(m, tok, [prompt], max_new_tokens=16, temperature=0)
    assert "Paris" in out.texts[0]


def test_sampler_logprobs_match_a_forward_pass_and_greedy_matches_generate(tiny_sft):
    m, tok = tiny_sft
    prompts = build_prompts(tok, sample_problems("countdown", 3, 3, "test"))
    s = sample(m, tok, prompts, n=2, max_new_tokens=40, temperature=1.0, seed=0)
    assert s.completion_ids.shape == s.logprobs.shape == s.completion_mask.shape
    ids = torch.cat([s.prompt_ids, s.completion_ids], 1)
    att = torch.cat([s.prompt_mask, s.completion_mask], 1)
    pos = (att.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        logits = m(input_ids=ids, attention_mask=att, position_ids=pos).logits
    P = s.prompt_ids.shape[1]
    lp = logits[:, P - 1 : -1].log_softmax(-1).gather(-1, s.completion_ids[..., None]).squeeze(-1)
    assert torch.allclose(lp * s.completion_mask, s.logprobs, atol=1e-4)
    g = sample(m, tok, prompts, max_new_tokens=40, temperature=0)
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    ref = m.generate(**enc, max_new_tokens=40, do_sample=False, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    ref_texts = tok.batch_decode(ref[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    assert g.texts == ref_texts
    assert sample(m, tok, prompts, n=2, temperature=1.0, seed=3).texts == sample(m, tok, prompts, n=2, temperature=1.0, seed=3).texts


@pytest.mark.parametrize("temperature,top_p", [(0.0, 1.0), (1.0, 1.0), (0.8, 0.9)])
def test_fast_static_cache_path_equals_plain_path(tiny_sft, temperature, top_p):
    """The static-cache decoder (a CUDA graph on GPUs) is the same function as the plain one, batch by batch."""
    m, tok = tiny_sft
    prompts = build_prompts(tok, sample_problems("countdown", 3, 12, "test", seed=4) + sample_problems("addition", 2, 6, "test"))
    kw = dict(n=2, max_new_tokens=48, temperature=temperature, top_p=top_p, seed=5, batch_size=16)
    plain, fast = sample(m, tok, prompts, fast=False, **kw), sample(m, tok, prompts, fast=True, **kw)
    assert plain.texts == fast.texts
    assert torch.equal(plain.completion_ids, fast.completion_ids) and torch.equal(plain.completion_mask, fast.completion_mask)
    assert torch.allclose(plain.logprobs, fast.logprobs, atol=1e-4)


def test_fast_path_stops_at_the_budget_and_falls_back_when_it_cannot_run(tiny_sft, monkeypatch):
    from utils.lm import generation
    m, tok = tiny_sft
    prompts = build_prompts(tok, sample_problems("countdown", 4, 3, "test"))
    short = sample(m, tok, prompts, max_new_tokens=5, temperature=0, fast=True)
    assert short.completion_ids.shape[1] == 5 and torch.equal(short.completion_ids, sample(m, tok, prompts, max_new_tokens=5, temperature=0, fast=False).completion_ids)

    def broken(*args, **kwargs):
        raise RuntimeError("cannot capture")
    monkeypatch.setattr(generation, "sample_batch_static", broken)
    with pytest.raises(RuntimeError, match="cannot capture"):  # asked for explicitly: the error surfaces
        sample(m, tok, prompts, max_new_tokens=5, temperature=0, fast=True)
    monkeypatch.setenv("COURSE_FAST_GENERATION", "1")
    with pytest.warns(UserWarning, match="plain path"):  # chosen by default: warn once, then use the plain path
        out = sample(m, tok, prompts, max_new_tokens=5, temperature=0)
    assert out.texts == short.texts
    assert m in generation._FAST_FAILED
    generation._FAST_FAILED.discard(m)
    monkeypatch.setenv("COURSE_FAST_GENERATION", "0")
    assert not generation.fast_generation_default(m)


def test_smollm2_gguf_path_can_be_overridden(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_SMOLLM2_GGUF", str(tmp_path / "missing.gguf"))
    with pytest.raises(FileNotFoundError, match="COURSE_SMOLLM2_GGUF"):
        models.smollm2_gguf_path()
    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF")
    monkeypatch.setenv("COURSE_SMOLLM2_GGUF", str(f))
    assert models.smollm2_gguf_path() == f


def test_deferred_done_checks_give_the_same_samples_and_random_state(tiny_sft):
    """Asking "all rows done?" every k steps (the CUDA default) decodes a few steps past the end; they are dropped
    and the generator is rewound, so tokens, log-probs and the *next* batch's draws equal those of k = 1."""
    from utils.lm import generation
    m, tok = tiny_sft
    prompts = build_prompts(tok, sample_problems("countdown", 3, 4, "test", seed=2) + sample_problems("addition", 2, 4, "test"))
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    stops = sorted({tok.eos_token_id, tok.pad_token_id})
    for temperature, top_p in ((0.0, 1.0), (1.0, 1.0), (0.8, 0.9)):
        runs = []
        for every in (1, 3):
            gen = torch.Generator().manual_seed(7)
            outs = [generation.sample_batch_static(m, enc["input_ids"], enc["attention_mask"], 60, temperature, top_p, stops,
                                                    tok.pad_token_id, gen, check_every=every) for _ in range(2)]
            runs.append((outs, gen.get_state()))
        (a, state_a), (b, state_b) = runs
        assert a[0][0].shape[1] < 60, "rows should end before the budget, else nothing is deferred"
        for x, y in zip(a, b):
            assert torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) and torch.equal(x[2], y[2])
        assert torch.equal(state_a, state_b)


def _graph_count() -> int:
    from torch._dynamo.utils import counters
    return int(counters["stats"]["unique_graphs"])


def test_compiled_step_equals_plain_path_and_does_not_recompile(tiny_sft, monkeypatch):
    """The compiled decode step traced by dynamo on CPU (backend aot_eager: the graph capture, functionalised
    cache writes and guards of the GPU path, without a C++ compiler): same tokens as the plain path, log-probs
    within 1e-4 (fp32; the eager check bounds the step's logits at 1e-4 relative), one graph for repeated calls
    and for prompt lengths in one cache bucket."""
    from utils.lm import generation
    monkeypatch.setenv("COURSE_COMPILE_BACKEND", "aot_eager")
    m, tok = tiny_sft
    probs = sample_problems("countdown", 3, 6, "test", seed=8)
    prompts = build_prompts(tok, probs)
    for temperature in (0.0, 1.0):
        kw = dict(n=2, max_new_tokens=32, temperature=temperature, seed=3, batch_size=12)
        plain, comp = sample(m, tok, prompts, fast=False, **kw), sample(m, tok, prompts, fast=True, compiled=True, **kw)
        assert generation.last_decode["compiled"] and generation.last_decode["check_error"] <= 1e-4
        assert plain.texts == comp.texts and torch.equal(plain.completion_ids, comp.completion_ids)
        assert torch.allclose(plain.logprobs, comp.logprobs, atol=1e-4)
    graphs = _graph_count()
    other = build_prompts(tok, sample_problems("countdown", 3, 6, "test", seed=9))  # other prompts, other P, same bucket
    for ps in (prompts, other, prompts):
        sample(m, tok, ps, n=2, max_new_tokens=32, temperature=1.0, seed=4, batch_size=12, fast=True, compiled=True)
    assert _graph_count() == graphs, "a repeated call with the same shapes compiled again"
    assert not generation.compile_generation_default(m)  # CPU: eager unless asked
    monkeypatch.setenv("COURSE_COMPILE_GENERATION", "1")
    assert generation.compile_generation_default(m)
    with pytest.raises(ValueError, match="CUDA graphs itself"):
        generation._compiled_step("inductor", "reduce-overhead")


def test_compiled_step_failures_fall_back_to_the_fast_path(tiny_sft, monkeypatch):
    """A compiled step that crashes, or that computes something else than the eager one (caught by the check on
    the first step), makes sample() warn and use the uncompiled fast path; asked for explicitly, it raises."""
    from utils.lm import generation
    m, tok = tiny_sft
    prompts = build_prompts(tok, sample_problems("addition", 3, 3, "test"))
    kw = dict(n=2, max_new_tokens=12, temperature=1.0, seed=1)
    ref = sample(m, tok, prompts, fast=False, **kw)

    def crashes(*args):
        raise RuntimeError("inductor exploded")

    def wrong(*args):
        return generation._step_logits(*args) * 1.5
    monkeypatch.setenv("COURSE_FAST_GENERATION", "1")
    monkeypatch.setenv("COURSE_COMPILE_GENERATION", "1")
    for bad, err in ((crashes, RuntimeError), (wrong, ValueError)):
        monkeypatch.setattr(generation, "_compiled_step", lambda backend, mode, bad=bad: bad)
        with pytest.raises(err):
            sample(m, tok, prompts, fast=True, compiled=True, **kw)
        with pytest.warns(UserWarning, match="without torch.compile"):
            out = sample(m, tok, prompts, **kw)
        assert out.texts == ref.texts and torch.allclose(out.logprobs, ref.logprobs, atol=1e-4)
        assert m in generation._COMPILE_FAILED and m not in generation._FAST_FAILED
        generation._COMPILE_FAILED.discard(m)


@pytest.mark.skipif(shutil.which(os.environ.get("CXX", "g++")) is None, reason="inductor on CPU needs a C++ compiler")
def test_inductor_compiled_step_on_cpu():
    """The real backend (inductor) once on CPU, on a 1-layer tiny model so that compiling stays short: the GPU run
    should not meet a trivial tracing or codegen error first. Greedy tokens equal the plain path's, twice."""
    from utils.lm import generation
    m, tok = models.new_tiny_model(seed=0, num_hidden_layers=1)
    m.eval()
    prompts = build_prompts(tok, sample_problems("countdown", 3, 2, "test"), system=None)
    plain = sample(m, tok, prompts, max_new_tokens=6, temperature=0, fast=False)
    for _ in range(2):  # the second call: a fresh cache (new addresses) through the same compiled code
        comp = sample(m, tok, prompts, max_new_tokens=6, temperature=0, fast=True, compiled=True)
        assert generation.last_decode["compiled"] and generation.last_decode["check_error"] <= 1e-4
        assert torch.equal(plain.completion_ids, comp.completion_ids)


def test_default_compiles_a_shape_from_its_second_use(tiny_sft, monkeypatch):
    """Left to the default (as on CUDA), a one-off shape is not compiled and a repeated one is."""
    from utils.lm import generation
    monkeypatch.setenv("COURSE_COMPILE_BACKEND", "aot_eager")
    monkeypatch.delenv("COURSE_COMPILE_GENERATION", raising=False)
    monkeypatch.setattr(generation, "compile_generation_default", lambda model: True)
    m, tok = models.new_tiny_model(seed=2)
    m.eval()
    prompts = build_prompts(tok, sample_problems("countdown", 3, 2, "test"), system=None)
    used = []
    for max_new in (8, 8, 9, 100):  # 100: another cache bucket
        sample(m, tok, prompts, max_new_tokens=max_new, temperature=0, fast=True)
        used.append(generation.last_decode["compiled"])
    assert used == [False, True, True, False]


def test_samples_select_rows_and_trim(tiny_sft):
    model, tok = tiny_sft
    s = sample(model, tok, build_prompts(tok, sample_problems("countdown", 3, 3, "test")), n=2, max_new_tokens=12, seed=0)
    sub = s.select([4, 1])
    assert sub.texts == [s.texts[4], s.texts[1]] and torch.equal(sub.prompt_ids, s.prompt_ids[[4, 1]])
    assert sub.completion_ids.shape[1] == max(int(sub.lengths.max()), 1) <= s.completion_ids.shape[1]
    assert torch.equal(sub.completion_mask.sum(-1), s.completion_mask[[4, 1]].sum(-1))  # trimming drops padding only
    whole = s.select(slice(0, 3), trim=False)
    assert whole.completion_ids.shape == (3, s.completion_ids.shape[1]) and whole.texts == s.texts[:3]
