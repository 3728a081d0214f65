"""utils.search: expanding partial solutions by one step, the scorers, value-guided search; the world's one step."""
import math

import pytest
import torch

from utils import world
from utils.lm import Ledger, build_prompts, sample
from utils.reward_models.model import rm_texts
from utils.rl.common import Critic
from utils.search import (
    STOPS,
    LogProbScorer,
    ORMScorer,
    PRMScorer,
    ValueScorer,
    VerifierScorer,
    expand,
    value_guided_search,
)
from utils.search.scorers import closed, partial_boundaries

PROBS = world.sample_problems("countdown", 3, 3, split="test", seed=2)


def test_the_step_has_one_definition():
    assert world.SEPARATORS == ",\n;" and world.MAX_STEPS == 32
    c = "<think>7*4=28,5-3=2;\n28-2=26</think><answer>26</answer>"
    think = world.parse_completion(c).think
    b = world.step_boundaries(c)
    assert len(b) == len(world.split_steps(think)) == 3
    assert [c[i] for i in b[:-1]] == [",", ";"] and c.startswith("</think>", b[-1])
    assert world.completion_text([{"role": "assistant", "content": "x"}]) == "x" and world.completion_text(3) == ""


def test_partial_solutions_count_only_completed_steps():
    assert closed("<think>7*3=21,21+5") == "<think>7*3=21,</think>" and closed("<think>7*3") == "<think></think>"
    assert closed("") == "" and closed("<think>a,</think><answer>") == "<think>a,</think><answer>"
    assert partial_boundaries("<think>7*3=21,21+5") == [13] and partial_boundaries("<think>7*3") == []
    full = PROBS[0].completion()
    assert partial_boundaries(full) == world.step_boundaries(full)


def test_expand_continues_each_prefix_to_its_next_step(tiny_sft):
    m, tok = tiny_sft
    ref = PROBS[0].completion()
    prefixes = ["", ref[: ref.index(",") + 1], ref[: ref.index("</think>") + len("</think>")]]
    led = Ledger()
    ex = expand(m, tok, PROBS, prefixes, k=3, max_step_tokens=24, seed=5, ledger=led)
    assert [len(t) for t in ex.texts] == [3, 3, 3] and ex.prefixes == prefixes
    for pre, texts, ends, states in zip(prefixes, ex.texts, ex.ends, ex.states()):
        for t, e, s in zip(texts, ends, states):
            assert s == pre + t
            inner = t[:-len("</think>")] if e == "think" else t[:-len("</answer>")] if e == "answer" else t[:-1] if e == "step" else t
            assert not any(stop in inner for stop in STOPS)           # nothing after the first boundary
            assert e in ("eos", "budget") or any(t.endswith(stop) for stop in STOPS)
    assert ex.ends[0][0] == "step" and ex.texts[0][0].startswith("<think>")   # the tiny model opens its think block
    assert all(e == "answer" for e in ex.ends[2])                              # after </think> comes the answer
    assert led.tokens_generated == sum(map(sum, ex.tokens)) and led.model_calls == 1
    for texts, toks, ends in zip(ex.texts, ex.tokens, ex.ends):   # the tokens counted are the tokens returned
        assert toks == [len(tok(t, add_special_tokens=False)["input_ids"]) + (e == "eos") for t, e in zip(texts, ends)]
    again = expand(m, tok, PROBS, prefixes, k=3, max_step_tokens=24, seed=5)
    assert again.texts == ex.texts and expand(m, tok, PROBS, prefixes, k=3, seed=6).texts != ex.texts


def test_expand_rows_are_prefixes_of_free_sampling(tiny_sft):
    m, tok = tiny_sft
    ex = expand(m, tok, PROBS, [""] * 3, k=2, max_step_tokens=40, seed=3)
    free = sample(m, tok, build_prompts(tok, PROBS), n=2, max_new_tokens=40, temperature=1.0, seed=3)
    assert [free.texts[i].startswith(t) for i, t in enumerate(sum(ex.texts, []))] == [True] * 6
    with pytest.raises(ValueError):
        expand(m, tok, PROBS, [""], k=2)


def test_verifier_scorer_follows_the_exact_labels():
    p = PROBS[0]
    good = p.completion()
    steps = list(p.steps)
    partial = "<think>" + steps[0] + ","
    wrong = "<think>1+1=3,"
    s = VerifierScorer()
    out = s([p, p, p, p], [good, partial, wrong, ""])
    assert out[0] == [1.0] * len(steps) and out[1] == [1.0] and out[2] == [0.0] and out[3] == []
    assert s.final([p, p, p, p], [good, partial, wrong, ""]) == [1.0, 1.0, 0.0, 1.0]
    assert s.final([p], [good.replace(p.answer, "1+1")]) == [0.0]      # closed, wrong answer: the outcome


def test_reward_model_scorers_per_step_and_final(tiny_sft):
    from utils.reward_models import load_reward_model
    from utils.reward_models import process as pr

    rm, tok = load_reward_model("tiny-sft", seed=0)
    p, texts = PROBS[0], [PROBS[0].completion(), "<think>" + PROBS[0].steps[0] + ",4*4", ""]
    led = Ledger()
    prm = PRMScorer(rm, tok, how="min", ledger=led)
    steps = prm([p] * 3, texts)
    assert [len(v) for v in steps] == [len(p.steps), 1, 0]
    assert steps[0] == pytest.approx(pr.step_probabilities(rm, tok, [p], [texts[0]])[0], abs=1e-6)
    assert steps[1][0] == pytest.approx(steps[0][0], abs=1e-5)     # causal: the state after step 1 is the same
    assert prm.final([p] * 3, texts) == pytest.approx([min(steps[0]), steps[1][0], 0.0], abs=1e-6)
    assert led.tokens_scored > 0 and led.model_calls >= 1
    for how in pr.AGGREGATIONS:
        assert PRMScorer(rm, tok, how=how).final([p], texts[:1]) == pytest.approx(pr.prm_scores(rm, tok, [p], texts[:1], how).tolist(), abs=1e-6)
    with pytest.raises(ValueError):
        PRMScorer(rm, tok, how="max")
    orm = ORMScorer(rm, tok, ledger=Ledger())
    per = orm([p] * 2, texts[:2])
    assert [len(v) for v in per] == [len(p.steps), 1]
    assert orm.final([p], texts[:1]) == pytest.approx(pr.orm_scores(rm, tok, [p], texts[:1]).tolist(), abs=1e-6)
    think = texts[0][: texts[0].index("</think>") + len("</think>")]
    assert per[0][-1] == pytest.approx(orm.final([p], [think])[0], abs=1e-6)     # the last cut: the closed think block
    assert orm.ledger.tokens_scored > 0


def test_value_and_logprob_scorers(tiny_sft):
    m, tok = tiny_sft
    p, texts = PROBS[0], [PROBS[0].completion(), "<think>" + PROBS[0].steps[0] + ",", "<think>"]
    led = Ledger()
    v = ValueScorer(Critic(m, init_value=0.25), tok, ledger=led)
    vals = v([p] * 3, texts)
    n_read = sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in rm_texts(tok, [p] * 3, [closed(t) for t in texts]))
    assert led.tokens_scored == n_read and led.model_calls == 1                 # prompt + text + end, each read once
    assert [len(x) for x in vals] == [len(p.steps), 1, 0] and all(abs(x - 0.25) < 1e-6 for r in vals for x in r)
    assert v.final([p] * 3, texts)[:2] == pytest.approx([0.25, 0.25], abs=1e-6) and v.final([p], ["<think>"]) == [-math.inf]
    lp = LogProbScorer(m, tok, ledger=Ledger())
    per, fin = lp([p] * 2, texts[:2]), lp.final([p] * 2, texts[:2])
    assert [len(x) for x in per] == [len(p.steps), 1] and all(x < 0 for r in per for x in r)
    assert per[1][0] == pytest.approx(per[0][0], abs=1e-5)          # the same first step, the same mean log-prob
    assert fin[1] == pytest.approx(per[1][0], abs=1e-6)              # a text that ends at its step: the same mean
    s = sample(m, tok, build_prompts(tok, [p]), max_new_tokens=40, temperature=1.0, seed=0)
    want = float(s.logprobs[0, : int(s.completion_mask[0].sum()) - 1].mean())   # the text, without the end token
    assert lp.final([p], [s.texts[0]])[0] == pytest.approx(want, abs=1e-4)
    assert lp.ledger.tokens_scored > 0 and lp.ledger.model_calls == 3               # one batch per call


def test_value_guided_search_runs_and_counts_its_tokens(tiny_sft):
    m, tok = tiny_sft
    sr = value_guided_search(m, Critic(m, init_value=0.0), tok, PROBS, 2, max_new_tokens=40, seed=1)
    assert len(sr.texts) == 3 and sr.correct.shape == (3,) and 1 <= sr.rounds <= 6
    assert sr.tokens == sr.ledger.tokens_generated > 0 and sr.ledger.tokens_scored > 0
    assert sr.correct.tolist() == [world.score(p, t) for p, t in zip(PROBS, sr.texts)]
    exact = value_guided_search(m, None, tok, PROBS, 2, max_new_tokens=40, seed=1, scorer=VerifierScorer())
    assert exact.correct.float().mean() >= 0 and torch.equal(exact.correct, value_guided_search(
        m, None, tok, PROBS, 2, max_new_tokens=40, seed=1, scorer=VerifierScorer()).correct)
    with pytest.raises(ValueError):
        value_guided_search(m, None, tok, PROBS, 2)
