"""PPO machinery: GAE against a brute-force sum, the clipped losses' gradients, whitening, KL rewards, the driver."""
import copy

import pytest
import torch

from utils.lm import build_prompts, sample
from utils.lm.logprobs import kl_estimate
from utils.rl import common, ppo
from utils.world import sample_problems


def _batch(B=4, T=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([6, 3, 1, 5])[:B]
    mask = (torch.arange(T)[None] < lengths[:, None]).float()
    return torch.randn(B, T, generator=g) * mask, torch.randn(B, T, generator=g) * mask, mask


def test_gae_equals_its_definition_summed_by_hand():
    """A_t = sum_l (gamma lam)^l delta_{t+l}, V = 0 after the last real token; returns = A + V."""
    r, v, m = _batch()
    for gamma, lam in [(1.0, 0.95), (0.9, 0.5), (1.0, 1.0), (0.99, 0.0)]:
        adv, ret = ppo.gae(r, v, m, gamma, lam)
        for b in range(r.shape[0]):
            n = int(m[b].sum())
            vv = torch.cat([v[b, :n], torch.zeros(1)])
            delta = [float(r[b, t] + gamma * vv[t + 1] - vv[t]) for t in range(n)]
            for t in range(n):
                want = sum((gamma * lam) ** k * delta[t + k] for k in range(n - t))
                assert abs(float(adv[b, t]) - want) < 1e-5
            assert torch.all(adv[b, n:] == 0) and torch.all(ret[b, n:] == 0)
        assert torch.allclose(ret, (adv + v) * m, atol=1e-6)


def test_gae_limits():
    """lam = 1, gamma = 1: the Monte-Carlo return-to-go minus V; lam = 0: the one-step TD error."""
    r, v, m = _batch()
    adv, _ = ppo.gae(r, v, m, 1.0, 1.0)
    togo = r.flip(-1).cumsum(-1).flip(-1) * m
    assert torch.allclose(adv, (togo - v) * m, atol=1e-5)
    adv0, _ = ppo.gae(r, v, m, 1.0, 0.0)
    v_next = torch.cat([v[:, 1:], torch.zeros(v.shape[0], 1)], 1) * torch.cat([m[:, 1:], torch.zeros(m.shape[0], 1)], 1)
    assert torch.allclose(adv0, (r + v_next - v) * m, atol=1e-6)
    with pytest.raises(ValueError):
        ppo.gae(r, v[:, :3], m)


def test_kl_rewards_put_the_score_on_the_last_token():
    _, _, m = _batch()
    kl = torch.rand(m.shape) * m
    scores = torch.tensor([1.0, 0.0, 2.0, -1.0])
    r = ppo.kl_rewards(scores, kl, m, 0.1)
    assert torch.allclose(r.sum(-1), scores - 0.1 * kl.sum(-1), atol=1e-6)
    last = m.sum(-1).long() - 1
    assert torch.allclose(r[torch.arange(4), last] + 0.1 * kl[torch.arange(4), last], scores)
    with pytest.raises(ValueError):
        ppo.kl_rewards(scores[:2], kl, m, 0.1)


def test_whiten_over_the_mask_only():
    x, _, m = _batch(seed=1)
    w = ppo.whiten(x * 3 + 5 * m, m)
    sel = w[m.bool()]
    assert abs(float(sel.mean())) < 1e-5 and abs(float(sel.std()) - 1) < 1e-3
    assert torch.all(w[~m.bool()] == 0)


def test_clipped_loss_is_the_policy_gradient_at_ratio_one_and_flat_outside_the_clip():
    """At theta = theta_old the clip is inactive and the gradient is -mean_t A_t grad log pi; beyond 1 + eps
    with A > 0 (or below 1 - eps with A < 0) the gradient is zero."""
    _, adv, m = _batch(seed=2)
    logp = (torch.randn(m.shape) * m).requires_grad_(True)
    loss, st = ppo.clipped_policy_loss(logp, logp.detach(), adv, m, 0.2)
    (g,) = torch.autograd.grad(loss, logp)
    assert torch.allclose(g, -adv * m / m.sum(), atol=1e-7)
    assert st["clip_frac"] == 0 and abs(st["ratio_mean"] - 1) < 1e-6
    shift = torch.where(adv > 0, torch.full_like(adv, 0.5), torch.full_like(adv, -0.5))  # ratio e^{+-0.5}: out of [0.8, 1.2]
    new = (logp.detach() + shift).requires_grad_(True)
    loss, st = ppo.clipped_policy_loss(new, logp.detach(), adv, m, 0.2)
    (g,) = torch.autograd.grad(loss, new)
    assert torch.allclose(g, torch.zeros_like(g)) and st["clip_frac"] == pytest.approx(1.0)
    # the pessimistic side is not clipped: a ratio moved the *wrong* way keeps its gradient
    new = (logp.detach() - shift).requires_grad_(True)
    loss, st = ppo.clipped_policy_loss(new, logp.detach(), adv, m, 0.2)
    (g,) = torch.autograd.grad(loss, new)
    assert torch.all((g != 0) == m.bool()) and st["clip_frac"] == 0


def test_approx_kl_is_k3_of_kl_old_to_new_under_old_samples():
    """approx_kl = mean of (rho - 1) - log rho over tokens drawn from pi_old: unbiased for KL(pi_old || pi_theta);
    the inverted ratio, (1/rho - 1) + log rho, estimates chi^2 - KL instead and fails here."""
    g = torch.Generator().manual_seed(0)
    old = torch.log_softmax(torch.randn(8, generator=g), -1)
    new = torch.log_softmax(old + 1.5 * torch.randn(8, generator=g), -1)   # KL 0.33; the inverted form gives 0.44
    exact = float((old.exp() * (old - new)).sum())
    y = torch.multinomial(old.exp(), 200_000, replacement=True, generator=g)[None]      # [1, N] draws from pi_old
    mask = torch.ones_like(y, dtype=torch.float32)
    _, st = ppo.clipped_policy_loss(new[y], old[y], torch.zeros_like(mask), mask)
    # 200k draws: the s.e. is ~2e-3; 0.02 is ~10 s.e. and well below the inverted form's error (0.11)
    assert st["approx_kl"] == pytest.approx(exact, abs=0.02)
    inverted = float((torch.expm1(old[y] - new[y]) + (new[y] - old[y])).mean())
    assert abs(inverted - exact) > 0.05


def test_value_loss_clipping():
    ret = torch.tensor([[1.0, 1.0]])
    m = torch.ones(1, 2)
    old = torch.zeros(1, 2)
    v = torch.tensor([[0.5, 2.0]], requires_grad=True)
    plain = ppo.clipped_value_loss(v, old, ret, m, None)
    assert float(plain.detach()) == pytest.approx(0.5 * (0.25 + 1.0) / 2)
    clipped = ppo.clipped_value_loss(v, old, ret, m, 0.2)        # V_clip = [0.2, 0.2]: errors 0.64 and 0.64
    assert float(clipped.detach()) == pytest.approx(0.5 * (0.64 + 1.0) / 2)


def test_explained_variance():
    r, _, m = _batch(seed=3)
    assert ppo.explained_variance(r, r, m) == pytest.approx(1.0)
    mean = float(r[m.bool()].mean())
    assert ppo.explained_variance(torch.full_like(r, mean), r, m) == pytest.approx(0.0, abs=1e-6)


def test_k1_and_k3_are_unbiased_for_the_exact_kl():
    """Sampling tokens from pi, the mean of k1 and of k3 approaches the exact KL(pi || pi_ref); k3 is never negative."""
    g = torch.Generator().manual_seed(0)
    logits, ref_logits = torch.randn(1, 1, 7, generator=g), torch.randn(1, 1, 7, generator=g)
    exact = float(common.exact_token_kl(logits, ref_logits, torch.ones(1, 1)))
    p = logits[0, 0].softmax(-1)
    y = torch.multinomial(p, 200_000, replacement=True, generator=g)
    lp, lq = logits[0, 0].log_softmax(-1)[y][None], ref_logits[0, 0].log_softmax(-1)[y][None]
    mask = torch.ones_like(lp)
    for kind in ("k1", "k3"):
        est = kl_estimate(lp, lq, mask, kind)
        assert abs(float(est.mean()) - exact) < 4 * float(est.std()) / len(y) ** 0.5 + 1e-4
    assert float(kl_estimate(lp, lq, mask, "k3").min()) >= 0


def test_config_and_reward_validation():
    with pytest.raises(ValueError):
        ppo.PPOConfig(clip_eps=0)
    with pytest.raises(ValueError):
        ppo.PPOConfig(kl_kind="k9")
    with pytest.raises(ValueError):
        ppo.PPOConfig(lam=1.5)
    probs = sample_problems("countdown", 3, 2, split="test")
    assert common.verifier_reward(probs, ["garbage", None]).tolist() == [0.0, 0.0]     # malformed -> 0, no crash
    with pytest.raises(ValueError):
        common.verifier_reward(probs, ["x"])


def test_train_ppo_runs_and_logs_the_diagnostics(random_tiny):
    model, tok = random_tiny
    policy = copy.deepcopy(model)
    stream = iter(sample_problems("countdown", 3, 8, split="train"))
    calls = []

    def reward_fn(problems, texts):
        calls.append(len(texts))
        return torch.tensor([float(len(t) % 3) for t in texts])

    cfg = ppo.PPOConfig(max_new_tokens=6, epochs=2, minibatches=2, lr=1e-3)
    res = ppo.train_ppo(policy, tok, reward_fn, stream, steps=2, prompts_per_step=4, cfg=cfg, samples_per_prompt=2,
                        progress=False)
    assert calls == [8, 8] and len(res.history) == 2
    for key in ["score", "kl", "entropy", "length", "explained_var", "clip_frac", "ratio_mean", "ratio_max",
                "approx_kl", "value_loss", "policy_loss"]:
        assert key in res.history[0]
    assert res.history[0]["kl"] == pytest.approx(0.0, abs=1e-5)        # pi_old = pi_ref at the first rollout
    changed = any(not torch.equal(a, b) for a, b in zip(policy.parameters(), model.parameters()))
    assert changed
    with pytest.raises(ValueError):
        ppo.train_ppo(policy, tok, lambda p, t: torch.zeros(1), iter(sample_problems("countdown", 3, 4)), 1, 4, cfg,
                      progress=False)


def test_first_minibatch_ratio_is_one_and_critic_shapes(random_tiny):
    model, tok = random_tiny
    probs = sample_problems("countdown", 3, 3, split="train")
    cfg = ppo.PPOConfig(max_new_tokens=5)
    critic = common.Critic(model, init_value=0.5)
    batch = ppo.collect(model, model, critic, tok, probs, common.verifier_reward, cfg, n=2, seed=0)
    m = batch.samples.completion_mask
    assert batch.values.shape == m.shape and torch.allclose(batch.values, 0.5 * m)
    assert torch.allclose(batch.kl, torch.zeros_like(batch.kl))
    s = sample(model, tok, build_prompts(tok, probs), n=2, max_new_tokens=5, seed=0)
    assert torch.allclose(s.logprobs, batch.old_logp, atol=1e-4)      # teacher forcing = the sampler's log-probs


def test_critic_reads_hidden_states_without_computing_logits(random_tiny):
    """The value model needs the backbone's states only: ``completion_hidden`` equals the states
    ``completion_logprobs(return_hidden=True)`` reads, and the critic never calls the LM head (whose ``[B, T, V]``
    output is most of a value model's memory with a real vocabulary)."""
    from utils.lm.logprobs import completion_hidden, completion_logprobs

    model, tok = random_tiny
    probs = sample_problems("countdown", 3, 3, "train", seed=4)
    s = sample(model, tok, build_prompts(tok, probs), n=2, max_new_tokens=12, temperature=1.0, seed=0)
    args = (s.prompt_ids, s.prompt_mask, s.completion_ids, s.completion_mask)
    h = completion_hidden(model, *args)
    assert h.shape == (*s.completion_ids.shape, model.config.hidden_size)
    assert torch.equal(h, completion_logprobs(model, *args, return_hidden=True).hidden)
    critic = common.Critic(model)
    calls = []
    critic.lm.get_output_embeddings().register_forward_hook(lambda *a: calls.append(1))
    v = critic(s)
    assert v.shape == s.completion_ids.shape and not calls


def test_completion_logits_are_the_distributions_completion_logprobs_reads(random_tiny):
    """``completion_logits`` (TRPO's exact KL, OREO's soft values) gives ``[B, T, V]`` fp32 logits whose log-softmax,
    gathered at the completion tokens, is ``completion_logprobs`` on the unpadded tokens (both routes in fp32)."""
    from utils.lm.logprobs import completion_logits, completion_logprobs, token_logprobs

    model, tok = random_tiny
    probs = sample_problems("countdown", 3, 3, "train", seed=5)
    s = sample(model, tok, build_prompts(tok, probs), n=2, max_new_tokens=12, temperature=1.0, seed=1)
    logits = completion_logits(model, s)
    assert logits.shape == (*s.completion_ids.shape, model.config.vocab_size) and logits.dtype == torch.float32
    m = s.completion_mask.bool()
    ours = token_logprobs(logits, s.completion_ids)[m]
    ref = completion_logprobs(model, s.prompt_ids, s.prompt_mask, s.completion_ids, s.completion_mask).logprobs[m]
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)   # two fp32 routes to the same numbers
