"""Outcome and process reward models: step boundaries, batches, losses, training, scoring, MC labels, loaders."""
import math

import pytest
import torch
import torch.nn.functional as F

from utils.reward_models import load_reward_model
from utils.reward_models import process as pr
from utils.world import label_steps, sample_problems, step_boundaries


def test_step_boundaries_match_the_labeller():
    c = "<think>7*4=28,5-3=2,28-2=26</think><answer>26</answer>"
    b = step_boundaries(c)
    assert [c[i] for i in b] == [",", ",", "<"] and c[b[-1]:].startswith("</think>")
    assert pr.step_prefixes(c) == ["<think>7*4=28,", "<think>7*4=28,5-3=2,", "<think>7*4=28,5-3=2,28-2=26"]
    probs = sample_problems("countdown", 4, 20, split="train", seed=1)
    odd = ["", None, 17, "<think></think><answer>3</answer>", "<think>1+1=2,,2*3=6,\n</think>", "<think>1+1=2,2*3=6",
           "<answer>5</answer>", "x" * 5000, "<think>" + ",".join(["1+1=2"] * 40) + "</think><answer>2</answer>"]
    for p in probs:
        for comp in [p.completion(), *odd]:
            labels = label_steps(p, comp) or []
            assert len(step_boundaries(comp)) == len(labels), comp
            assert len(pr.exact_step_labels([p], [comp])[0]) == len(labels)


def test_prm_batch_points_at_the_boundary_tokens(tiny_sft):
    _, tok = tiny_sft
    probs = sample_problems("countdown", 3, 3, split="train")
    comps = [probs[0].completion(), "garbage", probs[2].completion()]
    labels = pr.exact_step_labels(probs, comps)
    b = pr.prm_batch(tok, probs, comps, labels)
    assert b["step_mask"].sum(1).tolist() == [len(x) for x in labels]
    for i in (0, 2):
        n = int(b["step_mask"][i].sum())
        toks = [tok.decode([int(b["input_ids"][i, j])]) for j in b["step_pos"][i, :n]]
        assert toks[:-1] == [","] * (n - 1) and toks[-1] == "</think>"
    assert (b["step_labels"][0, : len(labels[0])] == torch.tensor(labels[0])).all()
    with pytest.raises(ValueError):
        pr.prm_batch(tok, probs, comps, [[1.0], [], []])


def test_losses_match_their_definitions():
    z, y = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([1.0, 0.0, 1.0])
    want = -sum(math.log(1 / (1 + math.exp(-a))) if t else math.log(1 - 1 / (1 + math.exp(-a))) for a, t in zip(z.tolist(), y.tolist())) / 3
    assert abs(pr.orm_loss(z, y).item() - want) < 1e-6
    logits = torch.tensor([[1.0, 2.0, 9.0], [0.0, 0.0, 0.0]])
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.5, 1.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])      # 3 real steps; padding must not count
    per = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    assert abs(pr.prm_loss(logits, labels, mask).item() - (per[0, 0] + per[0, 1] + per[1, 0]).item() / 3) < 1e-6
    with pytest.raises(ValueError):
        pr.prm_loss(logits, labels[:1], mask)
    with pytest.raises(ValueError):
        pr.orm_loss(z, y[:2])


def test_aggregations():
    steps = [[0.9, 0.2, 0.8], [0.5], []]
    assert torch.allclose(pr.aggregate(steps, "min"), torch.tensor([0.2, 0.5, 0.0]))
    assert torch.allclose(pr.aggregate(steps, "last"), torch.tensor([0.8, 0.5, 0.0]))
    assert torch.allclose(pr.aggregate(steps, "product"), torch.tensor([0.144, 0.5, 0.0]))
    assert torch.allclose(pr.aggregate(steps, "mean"), torch.tensor([1.9 / 3, 0.5, 0.0]))
    with pytest.raises(ValueError):
        pr.aggregate(steps, "max")


def test_orm_and_prm_learn_and_score_anything():
    probs = sample_problems("countdown", 3, 16, split="train", seed=2)
    good = [p.completion() for p in probs]
    bad = ["<think>" + p.completion()[7:].replace("</think>", "9+9=1</think>", 1) for p in probs]   # a wrong last step
    P2, C2 = probs + probs, good + bad
    correct = [1.0] * 16 + [0.0] * 16
    orm, tok = load_reward_model("tiny-sft", seed=0)
    losses = pr.train_orm(orm, tok, P2, C2, correct, steps=30, batch_size=16, lr=3e-3)
    assert losses[-1] < losses[0]
    s = pr.orm_scores(orm, tok, P2, C2)
    assert s[:16].mean() > s[16:].mean()
    prm, _ = load_reward_model("tiny-sft", seed=0)
    labels = pr.exact_step_labels(P2, C2)
    assert all(x[-1] == 0.0 for x in labels[16:])
    losses = pr.train_prm(prm, tok, P2, C2, labels, steps=30, batch_size=16, lr=3e-3)
    assert losses[-1] < losses[0]
    sp = pr.step_probabilities(prm, tok, P2 + probs[:2], C2 + ["", "<think>1+"])
    assert sp[-2:] == [[], []] and all(len(a) == len(b) for a, b in zip(sp, labels))
    assert pr.aggregate(sp[:16], "last").mean() > pr.aggregate(sp[16:32], "last").mean()
    assert pr.prm_scores(prm, tok, probs[:2], ["", None]).tolist() == [0.0, 0.0]
    # duplicates are scored once and the results spread back in order
    mixed_p, mixed_c = [probs[0], probs[1], probs[0]], [good[0], bad[1], good[0]]
    o = pr.orm_scores(orm, tok, mixed_p, mixed_c)
    assert o[0] == o[2] and torch.allclose(o[1], pr.orm_scores(orm, tok, [probs[1]], [bad[1]])[0])
    sp3 = pr.step_probabilities(prm, tok, mixed_p, mixed_c)
    assert sp3[0] == sp3[2] and sp3[1] == pytest.approx(pr.step_probabilities(prm, tok, [probs[1]], [bad[1]])[0], abs=1e-6)


def test_step_logits_equal_the_sequence_head_at_the_last_token(tiny_sft):
    """The PRM reads the same head as the sequence classifier: at the last token the two logits agree."""
    model, tok = load_reward_model("tiny-sft", seed=3)
    probs = sample_problems("countdown", 3, 4, split="train")
    comps = [p.completion() for p in probs]
    b = pr.prm_batch(tok, probs, comps)
    z = pr.token_logits(model, b["input_ids"], b["attention_mask"])
    last = b["attention_mask"].sum(1) - 1
    with torch.no_grad():
        seq = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits.squeeze(-1)
    # fp32, the same kernels on the same inputs: agreement to rounding
    assert torch.allclose(z.detach()[torch.arange(4), last], seq, atol=1e-5)


def test_mc_labels(tiny_sft):
    model, tok = tiny_sft
    probs = sample_problems("countdown", 3, 4, split="train", seed=5)
    comps = [p.completion() for p in probs] + ["nothing"]
    mc = pr.mc_step_labels(model, tok, probs + probs[:1], comps, k=3, max_new_tokens=40, seed=0)
    assert [len(h) for h in mc.hard] == [len(x) for x in pr.exact_step_labels(probs + probs[:1], comps)]
    assert mc.hard[-1] == [] and mc.rollouts == mc.rollouts_naive == 3 * sum(len(h) for h in mc.hard)
    for h, s in zip(mc.hard, mc.soft):
        assert all(a == (b > 0) for a, b in zip(h, s)) and all(0 <= b <= 1 for b in s)
    # a reference solution's last prefix holds the whole computation: tiny-sft finishes it correctly
    assert sum(h[-1] for h in mc.hard[:4]) >= 3
    dup = pr.mc_step_labels(model, tok, [probs[0]] * 2, [comps[0]] * 2, k=2, max_new_tokens=40)
    assert dup.rollouts * 2 == dup.rollouts_naive and dup.hard[0] == dup.hard[1]
    with pytest.raises(ValueError):
        pr.mc_step_labels(model, tok, probs, comps[:4], k=0)


def test_course_loaders_train_once_then_load(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_BUILD", str(tmp_path))
    from utils.runtime import get_profile

    P = get_profile("smoke")
    orm, tok = pr.course_orm(P)
    assert (P.model_dir("orm-06") / "config.json").exists()
    again, _ = pr.course_orm(P)
    for a, b in zip(orm.parameters(), again.parameters()):
        assert torch.equal(a, b)
    prm, _ = pr.course_prm(P, "mc")
    assert (P.model_dir("prm-mc-06") / "config.json").exists()
    assert len(pr.step_probabilities(prm, tok, sample_problems("countdown", 3, 1), ["<think>1+2=3</think>"])[0]) == 1
    with pytest.raises(ValueError):
        pr.course_prm(P, "soft")
