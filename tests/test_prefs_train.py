"""utils.prefs.data / train / trl_glue: preference data, the one training loop, and TRL's KTO, ORPO and SimPO losses."""
import copy
import math

import pytest
import torch

from utils.lm import build_prompts, load_model, sample
from utils.lm.logprobs import sequence_logprobs
from utils.numerics import rel_error
from utils.prefs import data as pdata
from utils.prefs import losses
from utils.prefs import train as ptrain
from utils.reward_models.model import completion_batch, implicit_reward
from utils.world import sample_problems, score
from utils.world.preferences import preference_pairs

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny-sft")


@pytest.fixture(scope="module")
def pairs():
    return preference_pairs(sample_problems("countdown", 3, 6, split="train", seed=3), 1, tau=0.05, seed=4)


def test_losses_are_differentiable_and_match_the_measurement():
    w = torch.tensor([-10.0, -20.0], requires_grad=True)
    lo, rw, rl = torch.tensor([-12.0, -18.0]), torch.tensor([-11.0, -19.0]), torch.tensor([-11.0, -19.0])
    loss = losses.dpo_loss(w, lo, rw, rl, 0.1)
    loss.sum().backward()
    m = 0.1 * ((w.detach() - rw) - (lo - rl))
    assert rel_error(w.grad, -0.1 * torch.sigmoid(-m)) < 1e-6          # d/dw -log sigma(m) = -beta sigma(-m)
    assert implicit_reward(w, rw, 0.1).requires_grad and not implicit_reward(w.detach(), rw, 0.1).requires_grad
    r = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    k = losses.kto_loss(r, torch.tensor([True, False, True]), 0.3, beta=0.2, undesirable_weight=2.0)
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    want = [1 - sig(0.2 * 0.2), 2 * (1 - sig(0.2 * 1.3)), 1 - sig(0.2 * 1.7)]
    assert max(abs(a - b) for a, b in zip(k.tolist(), want)) < 1e-6
    k.sum().backward()
    assert r.grad.abs().min() > 0
    z = losses.kto_reference_point(torch.tensor([-5.0, -6.0]), torch.tensor([-4.0, -4.0]))
    assert z.item() == 0 and not z.requires_grad                    # a negative estimate is clamped at 0


def test_sequence_logprobs_of_a_chat_batch_and_the_perplexity(tiny, pairs):
    model, tok = tiny
    probs, comps = [p.problem for p in pairs], [p.chosen for p in pairs]
    chat = completion_batch(tok, probs, comps)
    with torch.no_grad():
        lp, n = sequence_logprobs(model, chat)
        assert rel_error(sequence_logprobs(model, chat, batch_size=1)[0], lp) < 1e-5   # right padding changes nothing
    assert (n > 0).all() and (lp < 0).all() and torch.equal(n, (chat["labels"][:, 1:] != -100).sum(-1).float())
    ppl = pdata.perplexity(model, tok, probs, comps)
    assert rel_error(ppl, torch.exp(-lp / n)) < 1e-6 and (ppl >= 1).all()


def test_sequence_logprobs_of_samples(tiny):
    from utils.lm import samples_logprobs

    model, tok = tiny
    s = sample(model, tok, build_prompts(tok, sample_problems("countdown", 3, 3, split="test")), n=2, max_new_tokens=24, seed=0)
    with torch.no_grad():
        lp, n = sequence_logprobs(model, s)
        assert rel_error(lp, samples_logprobs(model, s).logprobs.sum(-1)) < 1e-6   # the same forward, the same sum
        assert rel_error(sequence_logprobs(model, s, batch_size=4)[0], lp) < 1e-5   # trimmed sub-batches: rounding only
    assert torch.equal(n, s.completion_mask.sum(-1).float())


def test_pairs_rankings_and_filter():
    p = sample_problems("countdown", 3, 3, split="train", seed=0)
    groups = [[("a", 0.1), ("b", 0.9), ("c", 0.5), ("d", 0.9)], [("e", 0.2)] * 4, [("f", -0.3), ("g", 0.4), ("h", 0.4), ("i", 0.4)]]
    pr = pdata.best_worst_pairs(p, groups)
    assert [(q.chosen, q.rejected) for q in pr] == [("b", "a"), ("g", "f")]      # the all-tie prompt is skipped
    rk = pdata.group_rankings(p, groups)
    assert [r.completions for r in rk] == [("b", "c", "a"), ("g", "f")]          # one sample per reward level, best first
    assert pdata.perplexity_threshold(torch.arange(1.0, 101.0), 0.95) == pytest.approx(95.05)
    kept = pdata.filter_pairs(pr, torch.tensor([1.0, 5.0]), torch.tensor([2.0, 1.0]), 3.0)
    assert [q.chosen for q in kept] == ["b"]


def test_win_rates_count_ties_as_half():
    w = ptrain.win_rates(torch.tensor([[1.0, 0.0], [0.5, 0.5]]), torch.tensor([[0.0, 0.0], [0.5, 1.0]]))
    assert w.tolist() == [0.75, 0.25]
    with pytest.raises(ValueError):
        ptrain.win_rates(torch.zeros(2, 3), torch.zeros(2, 2))


@pytest.mark.parametrize("method", ["dpo", "ipo", "simpo", "orpo", "kto", "listwise"])
def test_every_method_trains(tiny, pairs, method):
    ref, tok = tiny
    policy = copy.deepcopy(ref)
    data = [pdata.group_rankings([q.problem], [[(q.chosen, q.chosen_reward), (q.rejected, q.rejected_reward)]])[0] for q in pairs] \
        if method == "listwise" else pairs
    h = ptrain.train_preferences(policy, ref, tok, data, ptrain.PrefConfig(method=method, steps=3, batch_size=4, lr=1e-3))
    assert len(h["loss"]) == 3 and all(math.isfinite(x) for x in h["loss"])
    if method in ("dpo", "listwise"):
        assert abs(h["loss"][0] - math.log(2)) < 1e-5 and abs(h["chosen"][0]) < 1e-5   # the first step is at the reference
    assert any(abs(a - b) > 0 for a, b in zip(policy.parameters(), ref.parameters()) for a, b in [(a.sum(), b.sum())])


def test_listwise_on_pairs_is_dpo(tiny, pairs):
    ref, tok = tiny
    policy = copy.deepcopy(ref)
    from utils.prefs.trl_glue import perturb
    perturb(policy, 0.02)
    q = pairs[:4]
    pb = [x.problem for x in q]
    with torch.no_grad():
        chat = completion_batch(tok, pb + pb, [x.chosen for x in q] + [x.rejected for x in q])
        lp, n = sequence_logprobs(policy, chat)
        rp, _ = sequence_logprobs(ref, chat)
    (w, lo), (rw, rl), (nw, nl) = lp.chunk(2), rp.chunk(2), n.chunk(2)
    dpo = ptrain.method_loss(ptrain.PrefConfig("dpo"), w, lo, rw, rl, nw, nl)
    assert rel_error(dpo, losses.listwise_dpo_loss(torch.stack([w, lo], 1), torch.stack([rw, rl], 1), 0.1)) < 1e-6
    with pytest.raises(ValueError):
        ptrain.method_loss(ptrain.PrefConfig("listwise"), w, lo, rw, rl, nw, nl)
    with pytest.raises(ValueError):
        ptrain.PrefConfig("rlhf")


def test_online_dpo_and_evaluation(tiny):
    ref, tok = tiny
    policy = copy.deepcopy(ref)
    probs = sample_problems("countdown", 3, 8, split="train", seed=5)
    h, sizes = ptrain.online_dpo(policy, ref, tok, [probs[:4], probs[4:]], ptrain.PrefConfig(steps=1, batch_size=2), k=3, max_new_tokens=40)
    assert len(sizes) == 2 and len(h["loss"]) == sum(1 for s in sizes if s)
    test = sample_problems("countdown", 3, 3, split="test", seed=6)
    ev = ptrain.evaluate_policy(ref, ref, tok, test, 2, 40, seed=1)
    assert ev["rewards"].shape == (3, 2) and abs(ev["kl"]) < 1e-6     # the reference against itself: KL 0
    ev2 = ptrain.evaluate_policy(ref, ref, tok, test, 2, 40, seed=1)
    assert torch.equal(ev["rewards"], ev2["rewards"])                # the same seed, the same samples
    assert ptrain.win_rates(ev["rewards"], ev2["rewards"]).eq(0.5).all()
    direct = sample(ref, tok, build_prompts(tok, test), n=2, max_new_tokens=40, seed=1)  # the evaluator's samples
    assert ev["texts"] == direct.texts
    assert ev["correct"].flatten().tolist() == [score(test[i // 2], t) for i, t in enumerate(direct.texts)]


@pytest.mark.parametrize("name", ["kto", "orpo", "simpo"])
def test_our_losses_equal_trl(name, pairs):
    pytest.importorskip("trl")
    from utils.prefs import trl_glue

    model, tok = load_model("tiny-sft")
    ref, _ = load_model("tiny-sft")
    out = trl_glue.kto_check(model, ref, tok, pairs) if name == "kto" else getattr(trl_glue, f"{name}_check")(model, tok, pairs)
    assert rel_error(out["theirs"], out["ours"]) < 1e-5   # the same fp32 log-probs summed in another order: ~1e-7


@pytest.mark.parametrize("method", ["dpo", "listwise"])
def test_gradient_checkpointing_trains_the_same_and_switches_back_off(tiny, pairs, method):
    """The gpu profile's memory saver recomputes activations: the same losses and weights (float rounding aside)."""
    ref, tok = tiny
    data = [pdata.group_rankings([q.problem], [[(q.chosen, q.chosen_reward), (q.rejected, q.rejected_reward)]])[0] for q in pairs] \
        if method == "listwise" else pairs
    runs, base = [], torch.cat([p.detach().flatten() for p in ref.parameters()])
    for gc in (False, True):
        policy = copy.deepcopy(ref)
        h = ptrain.train_preferences(policy, ref, tok, data, ptrain.PrefConfig(method=method, steps=3, batch_size=4, lr=1e-3,
                                                                                gradient_checkpointing=gc))
        assert not policy.is_activation_checkpointing
        runs.append((h["loss"], torch.cat([p.detach().flatten() for p in policy.parameters()])))
    (l0, w0), (l1, w1) = runs
    assert max(abs(a - b) / max(abs(a), 1e-6) for a, b in zip(l0, l1)) < 1e-4
    assert rel_error(w1 - base, w0 - base) < 1e-3


@pytest.fixture(scope="module")
def offline(tiny):
    """Chapter 11's offline data: 4 sampled trajectories per problem, scored 0/1, and its (correct, failed) pairs."""
    from utils.rl import oreo

    model, tok = tiny
    data = oreo.offline_data(model, tok, sample_problems("countdown", 3, 8, split="train", seed=0), 4, max_new_tokens=40, seed=0)
    return data, pdata.correct_failed_pairs(data.rewards, data.k)


def _first_step(monkeypatch, train) -> tuple[float, torch.Tensor]:
    """The loss and the (unclipped) gradient of a loop's first optimiser step: read where it clips the gradient."""
    seen: list[torch.Tensor] = []
    clip = torch.nn.utils.clip_grad_norm_

    def spy(params, *a, **kw):
        params = list(params)
        if not seen:
            seen.append(torch.cat([p.grad.flatten() for p in params if p.grad is not None]).clone())
        return clip(params, *a, **kw)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    return train(), seen[0]


def _dpo_by_hand(policy, ref, samples, pairs, beta):
    """The first DPO step on sampled pairs, written out: ``-log σ(β(Δchosen - Δrejected))`` of the pairs' summed
    completion log-probs (teacher-forced on the sampled token ids), averaged over all pairs."""
    from utils.lm.logprobs import samples_logprobs

    def logp(model, rows):
        s = samples.select(rows)
        return (samples_logprobs(model, s).logprobs * s.completion_mask).sum(-1)

    ch, rj = [c for c, _ in pairs], [r for _, r in pairs]
    with torch.no_grad():
        ref_c, ref_r = logp(ref, ch), logp(ref, rj)
    policy.train()
    loss = -torch.nn.functional.logsigmoid(beta * ((logp(policy, ch) - ref_c) - (logp(policy, rj) - ref_r))).mean()
    loss.backward()
    g = torch.cat([p.grad.flatten() for p in policy.parameters()]).clone()
    policy.zero_grad(set_to_none=True)
    policy.eval()
    return float(loss.detach()), g


def test_dpo_on_sampled_pairs_takes_the_first_step_of_its_maths(tiny, offline, monkeypatch):
    """train_preferences on SamplePairs (chapter 11's DPO baseline) takes the first step of DPO written out by hand:
    the same loss and gradient, with and without micro-batches and gradient checkpointing."""
    ref, tok = tiny
    data, pairs = offline
    if len(pairs) < 2:
        pytest.skip("the sampled data has fewer than two (correct, failed) pairs")
    policy = copy.deepcopy(ref)
    from utils.prefs.trl_glue import perturb
    perturb(policy, 0.02)   # away from the reference: a loss other than log 2 and a gradient of every term
    want_loss, want_g = _dpo_by_hand(copy.deepcopy(policy), ref, data.samples, pairs, 0.1)
    sp = pdata.sample_pairs(data.samples, pairs)
    for micro, gc in [(None, False), (1, True)]:
        cfg = ptrain.PrefConfig("dpo", beta=0.1, steps=1, batch_size=len(pairs), lr=1e-5, warmup=0, micro_batch=micro,
                                gradient_checkpointing=gc)
        hist, g = _first_step(monkeypatch, lambda cfg=cfg: ptrain.train_preferences(copy.deepcopy(policy), ref, tok, sp, cfg))
        monkeypatch.undo()
        # fp32 sums over the same terms in another order (pairs shuffled, split into micro-batches, activations
        # recomputed): rounding of ~1e-7 per term, far below 1e-5 for the loss and 1e-4 for the gradient
        loss = sum(hist["loss"]) / len(hist["loss"])   # one entry per forward pass: equal micro-batches average
        assert abs(loss - want_loss) / want_loss < 1e-5
        assert rel_error(g, want_g) < 1e-4
