"""utils.rl.r1: the R1 rewards, the streams, the per-stage row, the student and saving a stage."""
import itertools

import pytest
import torch

from utils import world
from utils.lm import load_model
from utils.lm.models import count_parameters
from utils.rl import r1
from utils.runtime import get_profile
from utils.world.preferences import true_reward


@pytest.fixture(scope="module")
def cd3():
    return world.sample_problems("countdown", 3, 4, split="train", seed=0)


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny-sft")


def test_rewards_add_correctness_format_and_preference(cd3):
    p = cd3[0]
    right, unformatted = p.completion(), f"<answer>{p.answer}</answer>"
    wrong = world.format_completion(",".join(p.steps), "1+1")
    r = r1.r1_rewards([p, p, p, p], [right, unformatted, wrong, None], format_weight=0.5)
    assert r.tolist() == [1.5, 1.0, 0.5, 0.0]  # correct + 0.5 * well-formed; an answer without a think block is not well-formed
    rp = r1.r1_rewards([p, p], [right, wrong], format_weight=0.5, preference_weight=2.0)
    assert torch.allclose(rp, torch.tensor([1.5 + 2 * true_reward(p, right), 0.5 + 2 * true_reward(p, wrong)]))
    with pytest.raises(ValueError):
        r1.r1_rewards([p], [right, right])


def test_reward_log_is_the_training_curve(cd3, tiny):
    _, tok = tiny
    fn = r1.R1Reward(tok, format_weight=0.5)
    p = cd3[0]
    out = fn([p, p], [p.completion(), "garbage"])
    assert out.tolist() == [1.5, 0.0]
    assert fn.log[-1]["correct"] == 0.5 and fn.log[-1]["format"] == 0.5 and fn.log[-1]["reward"] == 0.75
    assert fn.log[-1]["tokens"] == sum(r1.completion_tokens(tok, [p.completion(), "garbage"])) / 2
    fn([p], [p.completion()])
    assert fn.curve("correct") == [0.5, 1.0]


def test_completion_tokens_counts_tags_as_one_token(tiny):
    _, tok = tiny
    assert r1.completion_tokens(tok, ["<think>1+2=3</think><answer>1+2</answer>"]) == [1 + 5 + 1 + 1 + 3 + 1]
    assert r1.completion_tokens(tok, []) == []


def test_pool_stream_visits_each_problem_once_per_pass(cd3):
    got = list(itertools.islice(r1.pool_stream(cd3, seed=1), 3 * len(cd3)))
    for k in range(3):
        assert sorted(p.uid for p in got[k * 4 : (k + 1) * 4]) == sorted(p.uid for p in cd3)
    assert got == list(itertools.islice(r1.pool_stream(cd3, seed=1), 12))  # deterministic
    with pytest.raises(ValueError):
        next(r1.pool_stream([]))


def test_mixed_stream_draws_from_every_task_by_weight():
    got = list(itertools.islice(r1.mixed_stream([("countdown", 3), ("addition", 3)], [0.75, 0.25], seed=0), 400))
    share = sum(p.family == "addition" for p in got) / len(got)
    assert 0.17 < share < 0.33  # 0.25 +- 4 standard errors of 400 draws
    assert all(p.split == "train" for p in got)
    assert [p.uid for p in got[:20]] == [p.uid for p in itertools.islice(r1.mixed_stream([("countdown", 3), ("addition", 3)], [0.75, 0.25], seed=0), 20)]


def test_stage_row_matches_a_direct_evaluation(tiny):
    model, tok = tiny
    skills = {"countdown-3": world.sample_problems("countdown", 3, 6, split="test", seed=0),
              "addition-2": world.sample_problems("addition", 2, 4, split="test", seed=0)}
    row = r1.stage_row(model, tok, skills, "countdown-3", max_new_tokens=48)
    texts = [t[0] for t in world_texts(model, tok, skills["countdown-3"])]
    assert row["countdown-3"] == sum(world.score(p, t) for p, t in zip(skills["countdown-3"], texts)) / 6
    assert row["format"] == sum(world.parse_completion(t).well_formed for t in texts) / 6
    assert row["tokens"] == sum(r1.completion_tokens(tok, texts)) / 6
    assert 0.0 <= row["addition-2"] <= 1.0
    with pytest.raises(ValueError):
        r1.stage_row(model, tok, skills, "strings-1", max_new_tokens=8)
    verdicts = {}
    two = r1.stage_row(model, tok, skills, "countdown-3", max_new_tokens=48, verdicts=verdicts, orders=2)
    assert set(verdicts) == set(skills) and two["countdown-3"] == float(verdicts["countdown-3"].mean())
    assert all(v * 2 == round(v * 2) for v in verdicts["countdown-3"])  # the mean of two orderings' 0/1 verdicts
    assert verdicts["addition-2"].tolist() == [float(world.score(p, t)) for p, t in
                                               zip(skills["addition-2"], [t[0] for t in world_texts(model, tok, skills["addition-2"])])]


def world_texts(model, tok, problems):
    from utils.lm import generate_texts

    return generate_texts(model, tok, problems, 1, 0.0, 48)


def test_student_is_smaller_and_shares_the_tokenizer(tiny):
    model, tok = tiny
    student, stok = r1.student_model(seed=0)
    assert count_parameters(student) < count_parameters(model) / 4
    assert stok.get_vocab() == tok.get_vocab()
    a, _ = r1.student_model(seed=0)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), student.parameters()))  # seeded


def test_save_stage_round_trips(tmp_path, monkeypatch, tiny):
    monkeypatch.setenv("COURSE_BUILD", str(tmp_path))
    model, tok = tiny
    out = r1.save_stage(model, tok, get_profile("smoke"), "test")
    assert out == tmp_path / "models" / "smoke" / "r1-test"
    again, _ = load_model(str(out))
    assert all(torch.equal(x, y) for x, y in zip(again.parameters(), model.parameters()))


def test_reward_log_splits_a_mixed_batch_by_family(cd3, tiny):
    _, tok = tiny
    fn = r1.R1Reward(tok, format_weight=0.5)
    add = world.sample_problems("addition", 3, 1, split="train", seed=0)[0]
    p = cd3[0]
    fn([p, p, add, add], [p.completion(), "garbage", add.completion(), add.completion()])
    row = fn.log[-1]
    assert row["reward:countdown"] == 0.75 and row["reward:addition"] == 1.5 and row["share:addition"] == 0.5
    assert row["correct:countdown"] == 0.5 and row["correct:addition"] == 1.0
    fn([p], [p.completion()])
    c = fn.curve("reward:addition")
    assert c[0] == 1.5 and c[1] != c[1]  # nan where the batch had no addition problem


def test_native_template_round_trips_the_pretraining_text(cd3, tiny):
    from utils.lm.pretrain import textbook

    _, tok = tiny
    p = cd3[0]
    prompt = r1.native_prompts(tok, [p])[0]
    assert prompt == f"{tok.bos_token}{p.prompt}:" and "<think>" not in prompt
    doc = textbook(p)                                    # 'use a b c to make T: steps so answer'
    assert doc.startswith(prompt[len(tok.bos_token):])
    native = doc[len(prompt) - len(tok.bos_token):]      # ' 7*3=21,21+5=26 so (7*3)+5'
    conv = r1.from_native(native)
    assert conv == p.completion() and world.score(p, conv) == 1.0
    assert r1.from_native(native + tok.bos_token) == conv           # the stop token is kept by the sampler
    run_on = native + "use 6 3 8 to make 7: 6+3=9"                   # not stopped: the next document follows
    assert r1.from_native(run_on) == run_on and world.score(p, r1.from_native(run_on)) == 0.0
    assert world.parse_completion(r1.from_native(run_on)).well_formed is False
    for odd in ("", " so ", "no answer here", None, 7, "1 so 2 so 3"):
        assert world.score(p, r1.from_native(odd)) == 0.0              # never raises, never scores
    fn = r1.native_reward(r1.R1Reward(tok, format_weight=0.5))
    assert fn([p, p], [native, run_on]).tolist() == [1.5, 0.0]


def test_native_decoder_stops_at_the_end_of_the_document(cd3):
    from utils.lm.evaluation import evaluate

    base, tok = load_model("tiny-base")
    res = evaluate(base, tok, cd3, decode=r1.native_decoder(base, tok), max_new_tokens=64, progress=False)
    assert all(world.parse_completion(t).well_formed for t in res.greedy_texts)  # stopped after the expression
    assert res.accuracy > 0  # the base solves some in its own template (it never does in the chat template)
    row = r1.stage_row(base, tok, {"countdown-3": cd3}, "countdown-3", 64, decode=r1.native_decoder(base, tok))
    assert row["countdown-3"] == res.accuracy and row["format"] == 1.0
