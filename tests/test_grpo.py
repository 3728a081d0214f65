"""GRPO machinery: advantages, the loss family against TRL 1.16's GRPOTrainer._compute_loss, shaping, the driver."""
import copy

import pytest
import torch

from utils.lm import build_prompts, sample
from utils.lm.logprobs import completion_logprobs
from utils.numerics import rel_error
from utils.rl import grpo, trl_glue
from utils.rl import policy_gradient as pg
from utils.runtime import setup
from utils.world import iter_problems, sample_problems


@pytest.fixture(scope="module")
def batch(random_tiny):
    model, tok = random_tiny
    probs = sample_problems("countdown", 3, 2, split="train", seed=0)
    s = sample(model, tok, build_prompts(tok, probs), n=4, max_new_tokens=10, temperature=1.0, seed=0)
    return s


def _logps(model, s):
    return completion_logprobs(model, s.prompt_ids, s.prompt_mask, s.completion_ids, s.completion_mask).logprobs


def test_zero_std_groups_and_the_advantage_scales_grpo_accepts():
    r = torch.tensor([1.0, 0, 0, 0, 1, 1, 1, 1, 0, 1, 0, 1])
    assert grpo.zero_std_groups(r, 4).tolist() == [False, True, False]
    assert torch.all(pg.group_advantages(r, 4)[4:8] == 0)                     # the zero-std group gets no signal
    for scale in pg.ADVANTAGE_SCALES:                                          # GRPOConfig takes every scale
        assert grpo.GRPOConfig(scale_rewards=scale).scale_rewards == scale
    with pytest.raises(ValueError):
        grpo.GRPOConfig(scale_rewards="median")


def test_overlong_penalty_is_dapos_piecewise_linear_form():
    L = torch.tensor([10, 30, 35, 40, 40])
    trunc = torch.tensor([False, False, False, False, True])
    got = grpo.overlong_penalty(L, 40, 10, 1.0, trunc)
    assert torch.allclose(got, torch.tensor([0.0, 0.0, -0.5, -1.0, -1.0]))
    assert torch.allclose(grpo.overlong_penalty(torch.tensor([32]), 40, 10, 0.5), torch.tensor([-0.1]))


def test_truncated_means_budget_used_without_an_end_token(random_tiny, batch):
    _, tok = random_tiny
    t = grpo.truncated(batch, tok, 10)
    lengths = batch.completion_mask.sum(-1)
    assert torch.all(t <= (lengths >= 10))
    for b in range(len(t)):
        last = int(batch.completion_ids[b, int(lengths[b]) - 1])
        assert bool(t[b]) == (int(lengths[b]) == 10 and last not in (tok.eos_token_id, tok.pad_token_id))


def test_on_policy_gradients_are_the_policy_gradient_aggregations(random_tiny, batch):
    """At ratio 1 the clipped GRPO loss has the REINFORCE gradient with GRPO's 1/|o| (grpo) or DAPO's token mean."""
    model, _ = random_tiny
    m = batch.completion_mask.float()
    adv = torch.tensor([1.0, -0.5, 0.3, -0.8, 0.2, 0.0, -1.0, 1.5])
    params = list(model.parameters())
    for lt, agg in [("grpo", "sequence_mean"), ("dapo", "token_mean"), ("bnpo", "token_mean"), ("cispo", "token_mean")]:
        lp = _logps(model, batch)
        ours = pg.flat_grad(grpo.grpo_loss(lp, lp.detach(), adv, m, lt, epsilon_high=5.0), params)
        want = pg.flat_grad(pg.policy_loss(_logps(model, batch), m, adv, agg), params)
        assert rel_error(ours, want) < 1e-5, lt   # the same sums in fp32, only the order differs


@pytest.mark.parametrize("loss_type, extra", [
    ("grpo", {}), ("dr_grpo", {}), ("dapo", {"epsilon_high": 0.28}), ("bnpo", {}), ("cispo", {"epsilon_high": 1.05}),
    ("gspo", {"epsilon": 0.05, "epsilon_high": 0.08}), ("grpo", {"beta": 0.1}), ("dapo", {"beta": 0.04, "epsilon_high": 0.28}),
])
def test_grpo_loss_matches_trl(random_tiny, batch, loss_type, extra, tmp_path):
    """Loss and gradient equal TRL's _compute_loss on the same batch, off-policy (ratios != 1) so clipping acts."""
    model, tok = random_tiny
    policy = copy.deepcopy(model)
    g = torch.Generator().manual_seed(1)
    m = batch.completion_mask
    with torch.no_grad():
        lp0 = _logps(policy, batch)
        old = (lp0 + 0.3 * torch.randn(lp0.shape, generator=g)) * m           # pi_old != pi_theta: ratios spread around 1
        ref = (lp0 + 0.2 * torch.randn(lp0.shape, generator=g)) * m
    adv = torch.tensor([1.0, -0.5, 0.3, -0.8, 0.2, 0.0, -1.0, 1.5])
    beta = extra.get("beta", 0.0)
    eps, eps_high = extra.get("epsilon", 0.2), extra.get("epsilon_high")
    trl_kw = dict(loss_type="grpo" if loss_type == "gspo" else loss_type, epsilon=eps, beta=beta,
                  max_completion_length=m.shape[1], num_generations=4,
                  importance_sampling_level="sequence" if loss_type == "gspo" else "token")
    if eps_high is not None:
        trl_kw["epsilon_high"] = eps_high
    trainer = trl_glue.trl_grpo_trainer(copy.deepcopy(model), tok, tmp_path, **trl_kw)
    loss_trl = trl_glue.trl_grpo_loss(trainer, batch, adv, old, ref if beta else None)
    lp = _logps(policy, batch)
    loss_ours = grpo.grpo_loss(lp, old, adv, m, loss_type, eps, eps_high, ref if beta else None, beta, m.shape[1])
    g_trl = torch.autograd.grad(loss_trl, list(trainer.model.parameters()))
    g_ours = torch.autograd.grad(loss_ours, list(policy.parameters()))
    # fp32 on both sides; only the order of reductions differs (TRL runs its own forward pass): 1e-4 is ~100x margin
    assert rel_error(loss_trl, loss_ours) < 1e-4
    assert rel_error(g_trl, g_ours) < 1e-4


def test_clip_stats_and_errors(random_tiny, batch):
    model, _ = random_tiny
    m = batch.completion_mask
    with torch.no_grad():
        lp = _logps(model, batch)
    adv = torch.ones(8)
    _, st = grpo.grpo_loss(lp, lp, adv, m, return_stats=True)
    assert st["clip_frac"] == 0 and abs(st["ratio_mean"] - 1) < 1e-6
    _, st = grpo.grpo_loss(lp + 0.5 * m, lp, adv, m, return_stats=True)       # every ratio e^0.5 > 1.2 with A > 0: clipped
    assert abs(st["clip_frac"] - 1) < 1e-6
    with pytest.raises(ValueError):
        grpo.grpo_loss(lp, lp, adv, m, "ppo")
    with pytest.raises(ValueError):
        grpo.grpo_loss(lp, lp, adv, m, beta=0.1)
    with pytest.raises(ValueError):
        grpo.GRPOConfig(loss_type="sapo")
    with pytest.raises(ValueError):
        grpo.GRPOConfig(group_size=1)


def test_micro_batches_give_the_same_gradient(random_tiny):
    """Gradient accumulation over micro-batches equals one pass, for a per-sequence and a token-level loss."""
    model, tok = random_tiny
    for lt in ["grpo", "dapo", "dr_grpo"]:
        grads = []
        for micro in [None, 3]:
            cfg = grpo.GRPOConfig(group_size=4, loss_type=lt, max_new_tokens=8, micro_batch=micro, beta=0.05)
            reward = lambda probs, texts: torch.tensor([float(len(t) % 3 == 0) for t in texts])  # noqa: E731
            b = grpo.collect(model, tok, iter_problems("countdown", 3, seed=1), 2, reward, cfg, seed=3)
            policy = copy.deepcopy(model)
            grpo.grpo_update(policy, torch.optim.SGD(policy.parameters(), lr=0.0), b, cfg, ref=model)
            grads.append(torch.cat([p.grad.reshape(-1) for p in policy.parameters() if p.grad is not None]))
        assert rel_error(grads[0], grads[1]) < 1e-5, lt   # fp32 sums in another order


def test_dynamic_sampling_keeps_only_informative_groups(random_tiny):
    model, tok = random_tiny
    calls = {"n": 0}

    def reward(probs, texts):                      # the first round's first group is all-equal, every other informative
        calls["n"] += 1
        r = torch.tensor([float(i % 2) for i in range(len(texts))])
        if calls["n"] == 1:
            r[:4] = 1.0
        return r

    cfg = grpo.GRPOConfig(group_size=4, max_new_tokens=6, dynamic_sampling=True, max_refills=3)
    b = grpo.collect(model, tok, iter_problems("countdown", 3, seed=2), 3, reward, cfg)
    assert b.groups_sampled > 3 and len(b.scores) == 3 * 4
    assert not bool(grpo.zero_std_groups(b.rewards, 4).any())
    calls["n"] = 0
    off = grpo.collect(model, tok, iter_problems("countdown", 3, seed=2), 3, reward, grpo.GRPOConfig(group_size=4, max_new_tokens=6))
    assert off.groups_sampled == 3 and abs(off.frac_zero_std - 1 / 3) < 1e-9


def test_train_grpo_runs_and_reports(random_tiny):
    model, tok = random_tiny
    policy = copy.deepcopy(model)
    reward = lambda probs, texts: torch.tensor([float("+" in t) for t in texts])  # noqa: E731
    cfg = grpo.GRPOConfig(group_size=4, max_new_tokens=8, lr=1e-3, num_iterations=2, mask_truncated=True,
                          overlong_buffer=4, loss_type="dapo", epsilon_high=0.28, beta=0.02)
    res = grpo.train_grpo(policy, tok, reward, iter_problems("countdown", 3, seed=0), 2, 2, cfg, progress=False,
                          extra_metrics=lambda b: {"n": float(len(b.scores))})
    assert len(res.history) == 2
    for key in ["reward", "frac_zero_std", "clip_frac", "kl", "entropy", "length", "truncated", "seconds", "n", "grad_norm"]:
        assert key in res.history[0]
    assert res.curve("n") == [8.0, 8.0]
    assert any(not torch.equal(a, b) for a, b in zip(policy.parameters(), model.parameters()))


def test_course_grpo_policy_saves_and_loads(monkeypatch, tmp_path):
    from utils.runtime import get_profile

    monkeypatch.setenv("COURSE_BUILD", str(tmp_path))
    P = get_profile("smoke")
    model, tok = grpo.course_grpo_policy(P)
    assert (P.model_dir("tiny-grpo") / "config.json").exists()
    again, _ = grpo.course_grpo_policy(P)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_bench_grpo_runs_at_tiny_size(tmp_path):
    """utils.tools.bench_grpo on the CPU with the tiny model: both trainers time their steps, the table renders."""
    import json

    from utils.tools import bench_grpo

    assert bench_grpo.main(["--model", "tiny-sft", "--prompts", "2", "--group", "2", "--new-tokens", "8", "--steps", "1",
                            "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "bench_grpo.json").read_text())
    assert set(res["rows"]) == {"course (utils.rl.grpo)", "TRL GRPOTrainer"}
    assert all(r["median step seconds"] > 0 and len(r["step seconds"]) == 1 for r in res["rows"].values())
    assert "| TRL GRPOTrainer |" in (tmp_path / "bench_grpo.md").read_text()


def test_arms_are_named_trained_once_and_loaded(monkeypatch, tmp_path):
    from utils import world
    monkeypatch.setenv("COURSE_BUILD", str(tmp_path))
    P = setup("smoke")
    assert [a.name for a in (grpo.Arm(), grpo.Arm(1), grpo.Arm(0, True), grpo.Arm(2, True))] == [
        "tiny-grpo", "tiny-grpo-s1", "tiny-grpo-placebo", "tiny-grpo-placebo-s2"]
    probe = world.sample_problems("countdown", 4, 2, "test")
    hist = grpo.train_arms(P, [grpo.Arm(0, True)], probe=probe, every=1, workers=1)
    (h,) = hist.values()
    steps = P.recipe(grpo.RECIPE)["steps"]
    assert len(h) == steps and all("probe_greedy" in x for x in h)
    assert (P.model_dir("tiny-grpo-placebo") / "config.json").exists()
    again = grpo.train_arms(P, [grpo.Arm(0, True)], probe=probe, workers=1)  # saved: loaded, not retrained
    assert list(again.values()) == [[]]
