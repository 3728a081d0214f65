"""sample(stop=...): rows end at a stop string, as prefixes of the unstopped rows; the compute ledger."""
import pytest
import torch

from utils import world
from utils.lm import Ledger, build_prompts, sample
from utils.lm.generation import stop_token_ids
from utils.world import sample_problems


def _prompts(tok):
    return build_prompts(tok, sample_problems("countdown", 3, 6, "test", seed=4) + sample_problems("addition", 2, 3, "test"))


def _cut_at(text: str, stop: str) -> str:
    i = text.find(stop)
    return text if i < 0 else text[: i + len(stop)]


def test_stop_token_ids_are_the_tokens_containing_a_stop_string(tiny_sft):
    _, tok = tiny_sft
    assert stop_token_ids(tok, [","]) == [tok.convert_tokens_to_ids(",")]
    assert stop_token_ids(tok, ["</think>"]) == [tok.convert_tokens_to_ids("</think>")]
    assert len(stop_token_ids(tok, list(world.SEPARATORS))) == 3 and stop_token_ids(tok, []) == []
    with pytest.raises(ValueError):
        stop_token_ids(tok, [""])


@pytest.mark.parametrize("temperature,top_p", [(1.0, 1.0), (0.8, 0.9), (0.0, 1.0)])
def test_stopped_rows_are_prefixes_of_the_plain_rows(tiny_sft, temperature, top_p):
    """Same seed: each row of sample(stop=[","]) is the plain row up to and including its first ",", with the same
    tokens and log-probs; rows without "," are the plain rows."""
    m, tok = tiny_sft
    prompts = _prompts(tok)
    kw = dict(n=3, max_new_tokens=40, temperature=temperature, top_p=top_p, seed=7, fast=False)
    plain, cut = sample(m, tok, prompts, **kw), sample(m, tok, prompts, stop=[","], **kw)
    assert cut.texts == [_cut_at(t, ",") for t in plain.texts]
    assert any("," in t for t in plain.texts) and any(t.endswith(",") for t in cut.texts)
    lens = cut.completion_mask.sum(1)
    for i, n in enumerate(lens.tolist()):
        assert torch.equal(cut.completion_ids[i, :n], plain.completion_ids[i, :n])
        assert torch.equal(cut.logprobs[i, :n], plain.logprobs[i, :n])    # the same random draws, not just close
        assert int(plain.completion_mask[i].sum()) >= n
    assert cut.completion_ids.shape[1] <= plain.completion_ids.shape[1]
    none = sample(m, tok, prompts, stop=["#"], **kw)                      # a character the model never writes
    assert none.texts == plain.texts and torch.equal(none.logprobs, plain.logprobs)


def test_stop_at_every_separator_and_at_the_think_tag(tiny_sft):
    m, tok = tiny_sft
    prompts = _prompts(tok)
    kw = dict(n=2, max_new_tokens=48, temperature=1.0, seed=3, fast=False)
    plain = sample(m, tok, prompts, **kw)
    steps = sample(m, tok, prompts, stop=list(world.SEPARATORS) + ["</think>"], **kw)
    for full, got in zip(plain.texts, steps.texts):
        ends = [i + len(s) for s in (*world.SEPARATORS, "</think>") if (i := full.find(s)) >= 0]
        assert got == (full[: min(ends)] if ends else full)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_fast_and_plain_paths_agree_with_stop(tiny_sft, temperature):
    m, tok = tiny_sft
    kw = dict(n=2, max_new_tokens=40, temperature=temperature, seed=5, stop=[",", "</think>"])
    plain, fast = sample(m, tok, _prompts(tok), fast=False, **kw), sample(m, tok, _prompts(tok), fast=True, **kw)
    assert plain.texts == fast.texts and torch.equal(plain.completion_mask, fast.completion_mask)
    assert torch.allclose(plain.logprobs, fast.logprobs, atol=1e-4)


def test_padding_side_is_restored_even_when_sampling_fails(tiny_sft, monkeypatch):
    from utils.lm import generation

    m, tok = tiny_sft
    tok.padding_side = "right"

    def broken(*args, **kwargs):
        raise RuntimeError("boom")
    monkeypatch.setattr(generation, "_sample_batch", broken)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            sample(m, tok, _prompts(tok)[:1], fast=False)
        assert tok.padding_side == "right"
    finally:
        tok.padding_side = "left"


def test_ledger_counts_and_adds(tiny_sft):
    m, tok = tiny_sft
    prompts = _prompts(tok)
    led = Ledger()
    s = sample(m, tok, prompts, n=2, max_new_tokens=20, temperature=1.0, seed=1, batch_size=8, stop=[","], ledger=led)
    assert led.tokens_generated == int(s.completion_mask.sum()) and led.tokens_scored == 0
    assert led.tokens_prefilled == int(s.prompt_mask.sum()) and led.model_calls == 3      # 18 rows in batches of 8
    a, b = Ledger(1, 2, 3, 4), Ledger(tokens_scored=10)
    assert (a + b).as_dict() == {"tokens_generated": 1, "tokens_prefilled": 2, "tokens_scored": 13, "model_calls": 4}
    assert a.as_dict()["tokens_scored"] == 3                                              # + makes a new ledger
    a.add(b, model_calls=2)
    assert a.tokens_scored == 13 and a.model_calls == 6 and a.tokens == 1 + 2 + 13
    with pytest.raises(KeyError):
        a.add(flops=1)


def test_deferred_done_checks_with_stop_strings(tiny_sft):
    """The CUDA path's deferred "all done?" check (every 8 steps) with stop-string tokens, run eagerly on CPU: the
    same tokens, log-probs and generator state after the call as checking every step."""
    from utils.lm import generation

    m, tok = tiny_sft
    enc = tok(_prompts(tok), return_tensors="pt", padding=True, add_special_tokens=False)
    stops = sorted({tok.eos_token_id, tok.pad_token_id, *stop_token_ids(tok, [",", "</think>"])})
    runs = []
    for every in (1, 8):
        gen = torch.Generator().manual_seed(3)
        out = generation.sample_batch_static(m, enc["input_ids"], enc["attention_mask"], 40, 1.0, 1.0, stops,
                                             tok.pad_token_id, gen, check_every=every)
        runs.append((out, gen.get_state()))
    (a, state_a), (b, state_b) = runs
    assert a[0].shape[1] < 12, "rows should stop at their first step, well inside the 8-step window"
    assert all(torch.equal(x, y) for x, y in zip(a, b)) and torch.equal(state_a, state_b)
