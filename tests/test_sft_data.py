"""utils.sft: conversations, SFT batches, teachers, the rejection-sampling filter, forgetting, token KD."""
import copy

import numpy as np
import pytest
import torch

from utils import sft, world
from utils.lm.batches import has_generation_markers, marker_batch, sft_batch
from utils.lm.logprobs import IGNORE
from utils.lm.tokenizer import build_tokenizer
from utils.lm.training import epoch_batches
from utils.world import countdown


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def test_conversations_with_and_without_rationale():
    p = countdown.make_problem([3, 5, 7], 26, ["7*3=21", "21+5=26"], "(7*3)+5")
    cot, plain = sft.conversations([p], cot=True)[0], sft.conversations([p], cot=False)[0]
    assert cot[-1]["content"] == "<think>7*3=21,21+5=26</think><answer>(7*3)+5</answer>"
    assert plain[-1]["content"] == "<think></think><answer>(7*3)+5</answer>"
    assert sft.strip_rationale(cot[-1]["content"]) == plain[-1]["content"]
    assert sft.strip_rationale("no answer here") == "no answer here"
    conv = sft.conversation(p, "<think></think><answer>5+3*7</answer>")
    assert conv[:-1] == cot[:-1] and conv[-1] == {"role": "assistant", "content": "<think></think><answer>5+3*7</answer>"}


def test_sft_batch_labels_only_the_answer(tok):
    probs = world.sample_problems("addition", 2, 3, "train")
    convs = sft.conversations(probs, cot=True)
    b = sft_batch(tok, convs)
    ref = marker_batch(tok, convs)
    assert all(torch.equal(b[k], ref[k]) for k in ref)  # the tiny template has generation markers
    for i, p in enumerate(probs):
        learned = b["labels"][i][b["labels"][i] != IGNORE]
        assert tok.decode(learned) == p.completion() + "<|end|>"


def test_prompt_completion_fallback_matches_generation_markers(tok):
    """A template without {% generation %} is masked by prompt/completion, with the same labels here."""
    plain = copy.deepcopy(tok)
    plain.chat_template = tok.chat_template.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    assert has_generation_markers(tok) and not has_generation_markers(plain)
    convs = sft.conversations(world.sample_problems("countdown", 3, 4, "train"), cot=True)
    a, b = sft_batch(tok, convs), sft_batch(plain, convs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    short = sft_batch(plain, convs, max_length=10)
    assert short["input_ids"].shape[1] == 10


def test_epoch_batches_cover_each_epoch():
    pick = epoch_batches(10, 4, seed=1)
    seen = [i for s in range(5) for i in pick(s)]  # 20 indices = 2 epochs
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:]) == list(range(10))
    assert seen[:10] != seen[10:]  # reshuffled
    assert pick(3) == epoch_batches(10, 4, seed=1)(3)  # deterministic
    assert sorted(epoch_batches(2, 5)(0)) in ([0, 0, 0, 1, 1], [0, 0, 1, 1, 1])  # tiny datasets repeat
    with pytest.raises(ValueError):
        epoch_batches(0, 4)


def test_keep_correct_filters_dedupes_and_caps():
    p = countdown.make_problem([3, 5, 7], 26, ["7*3=21", "21+5=26"], "(7*3)+5")
    q = countdown.make_problem([2, 4, 6], 14, ["6*2=12", "12+4=16"], "(6*2)+4")  # reference unused
    good = "<think>7*3=21,21+5=26</think><answer>(7*3)+5</answer>"
    good2 = "<think></think><answer>5+3*7</answer>"
    sloppy = "junk<answer>(7*3)+5</answer>"  # right answer, not well-formed
    wrong = "<think></think><answer>7*3</answer>"
    samples = [[good, wrong, good + "  ", sloppy, good2, None], ["", "<answer>((</answer>", None]]
    kept = sft.keep_correct([p, q], samples)
    assert kept == [(p, good), (p, good2)]
    assert sft.keep_correct([p, q], samples, dedupe=False) == [(p, good), (p, good), (p, good2)]
    assert sft.keep_correct([p, q], samples, well_formed=False) == [(p, good), (p, sloppy), (p, good2)]
    assert sft.keep_correct([p, q], samples, max_per_problem=1) == [(p, good)]
    with pytest.raises(ValueError):
        sft.keep_correct([p], samples)


def test_solver_teacher_is_exact():
    probs = world.sample_problems("countdown", 4, 30, "train") + world.sample_problems("addition", 3, 5, "train")
    data = sft.distill_dataset(sft.solver_completion, probs)
    assert data.teacher_accuracy == 1.0 and len(data.conversations) == len(probs)
    assert all(world.parse_completion(t).well_formed for _, t in data.pairs)
    # the solver's route is its own: it differs from the generator's worked solution on some problems
    assert any(t != p.completion() for p, t in data.pairs if p.family == "countdown")


def test_distill_dataset_only_correct():
    probs = world.sample_problems("addition", 2, 6, "train")
    flaky = lambda p: p.completion() if p.meta["a"] % 2 else world.format_completion("", "0")  # noqa: E731
    all_ = sft.distill_dataset(flaky, probs)
    good = sft.distill_dataset(flaky, probs, only_correct=True)
    n_odd = sum(p.meta["a"] % 2 for p in probs)
    assert len(all_.pairs) == 6 and len(good.pairs) == n_odd
    assert all_.teacher_accuracy == pytest.approx(n_odd / 6)
    with pytest.raises(ValueError):
        sft.distill_dataset(torch.nn.Linear(2, 2), probs)


def test_forgetting_metric():
    before = {"countdown-3": 0.4, "addition-3": 0.9, "addition-4": 0.8}
    after = {"countdown-3": 0.6, "addition-3": 0.7, "addition-4": 0.9}
    assert sft.forgetting(before, after, ["addition-3"]) == pytest.approx(0.2)
    assert sft.forgetting(before, after, ["addition-3", "addition-4"]) == pytest.approx(0.05)
    assert sft.forgetting(before, before, ["addition-3"]) == 0.0
    with pytest.raises(ValueError):
        sft.forgetting(before, after, [])
    rep = sft.forgetting_report(before, after, trained=["countdown-3"])
    assert rep["gain"] == pytest.approx(0.2) and rep["forgetting"] == pytest.approx(0.05)
    assert rep["delta/addition-3"] == pytest.approx(-0.2)


def test_token_kd_loss():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 5, 11, generator=g), torch.randn(2, 5, 11, generator=g)
    labels = torch.tensor([[1, 2, IGNORE, 3, 4], [IGNORE] * 4 + [5]])
    assert sft.token_kd_loss(s, s, labels).item() == pytest.approx(0.0, abs=1e-6)
    manual = torch.nn.functional.kl_div(s.log_softmax(-1), t.log_softmax(-1), log_target=True, reduction="none").sum(-1)
    want = manual[labels != IGNORE].mean()
    assert sft.token_kd_loss(s, t, labels).item() == pytest.approx(want.item(), rel=1e-5)
    assert sft.token_kd_loss(s, t, labels).item() > 0


def test_sft_lowers_the_loss_and_rejection_sampling_keeps_only_verified(tiny_sft):
    model, tok = tiny_sft
    student = sft.clone(model)
    assert student is not model
    convs = sft.conversations(world.sample_problems("addition", 4, 8, "train"), cot=False)
    losses = sft.fine_tune(student, tok, convs, steps=12, batch_size=8, lr=3e-3, warmup=1)
    assert np.mean(losses[-3:]) < losses[0]
    same = [torch.equal(a, b) for a, b in zip(model.parameters(), student.parameters())]
    assert not all(same), "the clone was trained, the original kept"
    probs = world.sample_problems("addition", 2, 4, "test")
    rs = sft.rejection_sample(model, tok, probs, k=3, max_new_tokens=48, progress=False)
    assert rs.correct.shape == (4, 3) and 0 <= rs.accept_rate <= 1 and 0 <= rs.coverage <= 1
    assert all(world.score(p, t) == 1.0 for p, t in rs.pairs)
    assert len(rs.pairs) <= rs.correct.sum()


def test_mix_proportions_and_distinct_items():
    a = [[{"role": "assistant", "content": f"a{i}"}] for i in range(5)]
    b = [[{"role": "assistant", "content": f"b{i}"}] for i in range(100)]
    out = sft.mix([a, b], [0.75, 0.25], 40, seed=1)
    names = [c[0]["content"] for c in out]
    assert len(out) == 40 and sum(n.startswith("a") for n in names) == 30
    assert len({n for n in names if n.startswith("b")}) == 10  # the large part gives distinct items
    assert {n for n in names if n.startswith("a")} == {f"a{i}" for i in range(5)}  # the small part cycles
    assert out == sft.mix([a, b], [0.75, 0.25], 40, seed=1)
    with pytest.raises(ValueError):
        sft.mix([a, []], [0.5, 0.5], 10)


def test_token_kd_loss_matches_trl_gkd():
    gkd = pytest.importorskip("trl.experimental.gkd")
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(3, 6, 13, generator=g), torch.randn(3, 6, 13, generator=g)
    labels = torch.randint(0, 13, (3, 6), generator=g)
    labels[0, :2] = IGNORE
    for temp in (1.0, 2.0):
        want = gkd.GKDTrainer.generalized_jsd_loss(s, t, labels=labels, beta=0.0, temperature=temp)
        assert sft.token_kd_loss(s, t, labels, temperature=temp).item() == pytest.approx(want.item(), rel=1e-5)
