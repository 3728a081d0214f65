"""Policy-gradient machinery: estimators against hand-computed score functions, baselines, log-probs, critic, MRT."""
import numpy as np
import pytest
import torch

from utils.lm import build_prompts, evaluate, sample
from utils.lm.logprobs import completion_logprobs, samples_logprobs, sequence_nll_check
from utils.rl import policy_gradient as pg
from utils.stats import percentile_interval
from utils.world import sample_problems, score


def _toy(K=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(K, generator=g, dtype=torch.float64)
    rewards = torch.rand(K, generator=g, dtype=torch.float64) + 2.0  # all positive: a baseline matters
    return theta, rewards


def test_reinforce_gradient_equals_hand_computed_score_function():
    """On a one-step categorical policy, autograd of the loss = -(1/B) sum_i (r_i - b_i)(onehot(a_i) - p)."""
    theta, r_table = _toy()
    actions = torch.tensor([0, 3, 3, 1, 4, 2])
    baseline = torch.tensor([0.0, 0.5, 1.0, 2.0, 0.3, 2.5], dtype=torch.float64)
    th = theta.clone().requires_grad_(True)
    logp = th.log_softmax(-1)[actions][:, None]  # [B, T=1]
    adv = r_table[actions] - baseline
    loss = pg.reinforce_loss(logp, torch.ones_like(logp), adv)
    loss.backward()
    p = theta.softmax(-1)
    onehot = torch.nn.functional.one_hot(actions, len(theta)).double()
    by_hand = -((adv[:, None]) * (onehot - p)).mean(0)
    assert torch.allclose(th.grad, by_hand, atol=1e-12)


def test_constant_baseline_keeps_the_expected_gradient_and_lowers_variance():
    """Exact expectation over actions: unbiased for any constant b; variance smallest near b = E[r]."""
    theta, r_table = _toy()
    p = theta.softmax(-1)
    th = theta.clone().requires_grad_(True)
    (true_grad,) = torch.autograd.grad((th.softmax(-1) * r_table).sum(), th)
    variances = {}
    for b in [0.0, float((p * r_table).sum()), -3.0]:
        per_action = []
        for a in range(len(theta)):
            th = theta.clone().requires_grad_(True)
            logp = th.log_softmax(-1)[a].view(1, 1)
            loss = pg.reinforce_loss(logp, torch.ones(1, 1), torch.tensor([r_table[a] - b]))
            (g,) = torch.autograd.grad(loss, th)
            per_action.append(-g)  # the REINFORCE estimate from one sample a
        est = torch.stack(per_action)  # [K, K]
        mean = (p[:, None] * est).sum(0)
        assert torch.allclose(mean, true_grad, atol=1e-10), f"baseline {b} biased the gradient"
        variances[b] = float((p[:, None] * (est - mean) ** 2).sum())
    b_mean = float((p * r_table).sum())
    assert variances[b_mean] < 0.2 * variances[0.0] and variances[0.0] < variances[-3.0]


def test_baselines_and_advantages():
    r = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0])  # 4 prompts x 2 samples
    assert torch.equal(pg.group_mean_baseline(r, 2), torch.tensor([0.5, 0.5, 0.5, 0.5, 1.0, 1.0, 0.0, 0.0]))
    assert torch.equal(pg.leave_one_out_baseline(r, 2), torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0]))
    r4 = torch.tensor([1.0, 0.0, 1.0, 1.0])
    assert torch.allclose(pg.leave_one_out_baseline(r4, 4), torch.tensor([2 / 3, 1.0, 2 / 3, 2 / 3]))
    greedy = torch.tensor([1.0, 0.0, 1.0, 0.0])
    assert torch.equal(pg.scst_advantages(r, greedy, 2), torch.tensor([0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]))
    assert torch.equal(pg.advantages(r, "none"), r)
    assert torch.allclose(pg.advantages(r, "batch_mean"), r - 0.5)
    assert torch.equal(pg.advantages(r, "scst", 2, greedy), pg.scst_advantages(r, greedy, 2))
    # the leave-one-out baseline of sample i does not depend on r_i (hence unbiased); the group mean does
    bumped = r.clone()
    bumped[0] = 7.0
    assert pg.leave_one_out_baseline(bumped, 2)[0] == pg.leave_one_out_baseline(r, 2)[0]
    assert pg.group_mean_baseline(bumped, 2)[0] != pg.group_mean_baseline(r, 2)[0]
    with pytest.raises(ValueError):
        pg.group_mean_baseline(r, 3)
    with pytest.raises(ValueError):
        pg.leave_one_out_baseline(r, 1)
    with pytest.raises(ValueError):
        pg.scst_advantages(r, greedy[:3], 2)
    with pytest.raises(ValueError):
        pg.advantages(r, "scst", 2)
    with pytest.raises(ValueError):
        pg.advantages(r, "magic")


def test_reinforce_loss_masks_and_per_token_advantages():
    logp = torch.randn(3, 4, requires_grad=True)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]])
    adv = torch.tensor([1.0, -2.0, 0.5])
    loss = pg.reinforce_loss(logp, mask, adv)
    (g,) = torch.autograd.grad(loss, logp)
    assert torch.allclose(g, -(adv[:, None] * mask) / 3)
    per_token = adv[:, None].expand(3, 4)
    assert torch.allclose(pg.reinforce_loss(logp, mask, per_token), loss)


def test_completion_logprobs_match_the_sampler_and_are_padding_invariant(random_tiny):
    model, tok = random_tiny
    prompts = build_prompts(tok, sample_problems("countdown", 3, 3, "test") + sample_problems("addition", 2, 1, "test"))
    s = sample(model, tok, prompts, n=2, max_new_tokens=12, temperature=0.7, seed=0)
    with torch.no_grad():
        out = samples_logprobs(model, s, temperature=0.7, return_entropy=True)
        out_h = samples_logprobs(model, s, temperature=0.7, return_hidden=True)
    assert torch.allclose(out.logprobs, s.logprobs, atol=1e-4)
    assert torch.allclose(out_h.logprobs, out.logprobs, atol=1e-5)
    assert out_h.hidden.shape == (*s.completion_ids.shape, model.config.hidden_size)
    m = s.completion_mask.bool()
    assert (out.entropy[m] >= -1e-6).all() and (out.entropy[m] <= np.log(len(tok)) + 1e-4).all()
    # one sequence alone (no padding) gives the same numbers as inside the padded batch
    i = int(s.prompt_mask.sum(1).argmin())  # the row with the most left padding
    keep_p, keep_c = s.prompt_mask[i].bool(), s.completion_mask[i].bool()
    with torch.no_grad():
        alone = completion_logprobs(model, s.prompt_ids[i][keep_p][None], s.prompt_mask[i][keep_p][None],
                                       s.completion_ids[i][keep_c][None], s.completion_mask[i][keep_c][None], temperature=0.7)
    assert torch.allclose(alone.logprobs[0], out.logprobs[i][keep_c], atol=1e-4)
    # and transformers' own loss agrees with the sequence log-prob
    ids = torch.cat([s.prompt_ids[i][keep_p], s.completion_ids[i][keep_c]])[None]
    with torch.no_grad():
        alone1 = completion_logprobs(model, s.prompt_ids[i][keep_p][None], s.prompt_mask[i][keep_p][None],
                                        s.completion_ids[i][keep_c][None], s.completion_mask[i][keep_c][None])
        nll = sequence_nll_check(model, ids, int(keep_p.sum()))
    assert torch.allclose(nll, -alone1.logprobs.mean(), atol=1e-5)
    with pytest.raises(ValueError):
        samples_logprobs(model, s, temperature=0.0)


def test_value_head_and_value_loss():
    head = pg.ValueHead(8, init_value=0.3)
    h = torch.randn(4, 5, 8)
    assert torch.allclose(head(h), torch.full((4, 5), 0.3))
    mask = torch.tensor([[1, 1, 1, 0, 0]] * 4)
    returns = torch.tensor([1.0, 0.0, 1.0, 0.0])
    v = torch.zeros(4, 5)
    v[:, 3:] = 100.0  # masked positions must not count
    assert pg.value_loss(v, returns, mask).item() == pytest.approx(0.5)
    # a linear critic can learn a linear target
    w = torch.randn(8)
    target = (h @ w).detach()
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    first = pg.value_loss(head(h), target, torch.ones(4, 5)).item()
    for _ in range(300):
        loss = pg.value_loss(head(h), target, torch.ones(4, 5))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.01 * first


def test_mrt_loss_is_the_expected_risk_and_its_gradient_has_a_baseline():
    theta, _ = _toy(K=4, seed=1)
    costs = torch.tensor([[0.0, 1.0, 0.5, 1.0]], dtype=torch.float64)
    logp = theta.log_softmax(-1)[None]  # the full support, normalised: Q = p when alpha = 1
    assert pg.mrt_loss(logp, costs).item() == pytest.approx(float((theta.softmax(-1) * costs[0]).sum()))
    seq = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    costs2 = torch.rand(2, 4, dtype=torch.float64)
    alpha = 0.7
    (g,) = torch.autograd.grad(pg.mrt_loss(seq, costs2, alpha), seq)
    q = torch.softmax(alpha * seq.detach(), -1)
    by_hand = alpha * q * (costs2 - (q * costs2).sum(-1, keepdim=True)) / 2
    assert torch.allclose(g, by_hand, atol=1e-12)


def test_mixer_weight_anneals():
    w = [pg.mixer_weight(s, 10) for s in range(12)]
    assert w[0] == 1.0 and w[10] == 0.0 and w[11] == 0.0 and all(a >= b for a, b in zip(w, w[1:]))
    assert pg.mixer_weight(9, 10, floor=0.2) == 0.2


def test_grad_stats_and_flat_grad():
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(7, 5))
    st = pg.GradStats()
    for x in xs:
        st.add(torch.tensor(x))
    assert st.total_variance == pytest.approx(float(xs.var(0, ddof=1).sum()))
    assert torch.allclose(st.mean, torch.tensor(xs.mean(0)))
    a = torch.ones(2, 3, requires_grad=True)
    b = torch.ones(4, requires_grad=True)
    unused = torch.ones(2, requires_grad=True)
    g = pg.flat_grad((a * 2).sum() + (b * 3).sum(), [a, b, unused])
    assert torch.equal(g, torch.tensor([2.0] * 6 + [3.0] * 4 + [0.0] * 2))
    with pytest.raises(ValueError):
        _ = pg.GradStats().total_variance


def test_rollout_shapes_and_rewards(random_tiny):
    model, tok = random_tiny
    probs = sample_problems("countdown", 3, 2, "train")
    ro = pg.rollout(model, tok, probs, group_size=3, max_new_tokens=8, seed=0)
    assert ro.rewards.shape == (6,) and set(ro.rewards.tolist()) <= {0.0, 1.0}
    assert ro.samples.completion_ids.shape[0] == 6 and ro.group_size == 3
    greedy = evaluate(model, tok, probs, max_new_tokens=8, progress=False)  # SCST's baseline: [M] greedy rewards
    s = sample(model, tok, build_prompts(tok, probs), n=1, max_new_tokens=8, temperature=0.0)
    assert greedy.greedy.tolist() == [score(p, t) for p, t in zip(probs, s.texts)]
    assert pg.advantages(ro.rewards, "scst", 3, greedy_rewards=torch.as_tensor(greedy.greedy)).shape == (6,)
    assert pg.entropy_from_logprobs(ro.samples.logprobs, ro.samples.completion_mask) > 0


def test_reinforce_backward_in_micro_batches_equals_one_pass(random_tiny):
    model, tok = random_tiny
    problems = sample_problems("countdown", 3, 3, split="test", seed=0)
    s = sample(model, tok, build_prompts(tok, problems), n=4, max_new_tokens=12, seed=0)
    adv = torch.linspace(-1, 1, 12)
    params = [p for p in model.parameters() if p.requires_grad]

    def grads(micro):
        model.zero_grad()
        value = pg.reinforce_backward(model, s, adv, micro)
        return value, torch.cat([p.grad.flatten() for p in params])

    v_full, g_full = grads(None)
    expected = pg.reinforce_loss(samples_logprobs(model, s).logprobs, s.completion_mask, adv)
    assert v_full == pytest.approx(float(expected), abs=1e-6)
    for micro in (1, 5, 12, 50):
        v, g = grads(micro)
        assert v == pytest.approx(v_full, abs=1e-5)
        assert torch.allclose(g, g_full, atol=1e-6, rtol=1e-4), micro
    model.zero_grad()
    with pytest.raises(ValueError, match="advantages"):
        pg.reinforce_backward(model, s, adv[:5])
    with pytest.raises(ValueError, match="micro_batch"):
        pg.reinforce_backward(model, s, adv, 0)


def test_group_mean_advantage_is_a_rescaled_leave_one_out_advantage():
    """Per sample, r_i - mean_G(r) = (G-1)/G * (r_i - mean_{j != i} r_j): a constant factor, not a bias in direction."""
    g = torch.Generator().manual_seed(3)
    for G in (2, 4, 8):
        r = torch.rand(5 * G, generator=g)
        assert torch.allclose(pg.advantages(r, "group_mean", G), (G - 1) / G * pg.advantages(r, "leave_one_out", G), atol=1e-6)
    r = torch.rand(12, generator=g)
    assert torch.allclose(pg.advantages(r, "batch_mean"), 11 / 12 * pg.advantages(r, "leave_one_out", 12), atol=1e-6)


def test_group_advantages_match_trl():
    # one success out of G: the success gets (G-1)/sqrt(G), each failure -1/sqrt(G) (up to eps)
    for G in (2, 4, 8):
        r = torch.zeros(G)
        r[0] = 1.0
        a = pg.group_advantages(r, G)
        assert a[0].item() == pytest.approx((G - 1) / G**0.5, rel=1e-3)
        assert torch.allclose(a[1:], torch.full((G - 1,), -1 / G**0.5), rtol=1e-3)
        assert torch.allclose(a, G**0.5 * pg.advantages(r, "group_mean", G), rtol=1e-3)
    # a zero-variance group gets zeros, not NaN; groups are normalised separately
    r = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0])
    a = pg.group_advantages(r, 4)
    assert torch.equal(a[:4], torch.zeros(4)) and torch.isfinite(a).all()
    assert torch.equal(pg.advantages(r, "grpo", 4), a)
    # invariant to an affine change of the reward; the same numbers as TRL's GRPOTrainer formula
    g = torch.Generator().manual_seed(0)
    r = torch.rand(24, generator=g)
    assert torch.allclose(pg.group_advantages(3 * r + 7, 6), pg.group_advantages(r, 6), atol=1e-3)
    trl_utils = pytest.importorskip("trl.trainer.utils")
    grouped = r.view(-1, 6)
    std = trl_utils.nanstd(grouped, dim=1).repeat_interleave(6)
    trl_adv = (r - grouped.mean(1).repeat_interleave(6)) / (std + 1e-4)
    assert torch.allclose(pg.group_advantages(r, 6), trl_adv, atol=1e-6)
    with pytest.raises(ValueError):
        pg.group_advantages(r, 1)


def test_group_advantages_scales():
    r = torch.tensor([1.0, 0, 0, 0, 1, 1, 1, 1, 0, 1, 0, 1])
    g = r.view(3, 4)
    centred = (g - g.mean(1, keepdim=True)).reshape(-1)
    assert torch.equal(pg.group_advantages(r, 4), pg.group_advantages(r, 4, "group"))
    # known answer: group [1, 0, 0, 0] has mean 1/4 and sample std 1/2
    assert pg.group_advantages(r, 4)[:4].tolist() == pytest.approx([0.75 / 0.5001, -0.25 / 0.5001, -0.25 / 0.5001, -0.25 / 0.5001])
    assert torch.allclose(pg.group_advantages(r, 4, "none"), centred)                       # Dr. GRPO: not divided
    assert torch.allclose(pg.group_advantages(r, 4, "batch"), centred / (r.std() + 1e-4))   # the batch's std
    assert torch.all(pg.group_advantages(r, 4, "batch")[4:8] == 0)
    with pytest.raises(ValueError):
        pg.group_advantages(r, 5)                                                             # 12 is not a multiple of 5
    with pytest.raises(ValueError):
        pg.group_advantages(r, 4, "median")


def test_policy_loss_aggregations_weight_tokens_as_documented():
    logp = torch.randn(2, 5, requires_grad=True)
    mask = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]])          # a 2-token and a 5-token completion
    adv = torch.tensor([1.0, -1.0])
    assert torch.equal(pg.policy_loss(logp, mask, adv, "sum"), pg.reinforce_loss(logp, mask, adv))
    weights = {}
    for agg in pg.LOSS_AGGREGATIONS:
        (gr,) = torch.autograd.grad(pg.policy_loss(logp, mask, adv, agg), logp)
        weights[agg] = -gr / adv[:, None]                              # w_{b,t}
    m = mask.float()
    assert torch.allclose(weights["sum"], m / 2)
    assert torch.allclose(weights["sequence_mean"], m / (2 * m.sum(1, keepdim=True)))
    assert torch.allclose(weights["token_mean"], m / 7)
    # every sequence weighs the same under the per-sequence mean; shares follow the length under the token mean
    assert torch.allclose(weights["sequence_mean"].sum(1), torch.tensor([0.5, 0.5]))
    assert torch.allclose(weights["token_mean"].sum(1), torch.tensor([2 / 7, 5 / 7]))
    per_token = adv[:, None].expand(2, 5)
    assert torch.allclose(pg.policy_loss(logp, mask, per_token, "token_mean"), pg.policy_loss(logp, mask, adv, "token_mean"))
    with pytest.raises(ValueError):
        pg.policy_loss(logp, mask, adv, "median")


def test_grad_samples_and_bootstrap_intervals():
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(9, 6)) * np.arange(1, 7)
    st, samp = pg.GradStats(), pg.GradSamples()
    for x in xs:
        st.add(torch.tensor(x))
        samp.add(torch.tensor(x))
    assert samp.n == 9 and samp.gram().shape == (9, 9)
    assert samp.total_variance == pytest.approx(st.total_variance, rel=1e-5)    # fp32 copies of the vectors
    gram = torch.tensor(xs @ xs.T)
    # a resample is the variance of the selected vectors, repeats included
    idx = torch.tensor([[0, 0, 3, 5, 8], [1, 2, 3, 4, 4]])
    got = pg.total_variance_from_gram(gram, idx)
    for row, v in zip(idx, got):
        assert float(v) == pytest.approx(float(xs[row.numpy()].var(0, ddof=1).sum()))
    # the bootstrap mean of the unbiased variance is the plug-in variance, (K-1)/K of it
    boot = pg.bootstrap_total_variances({"a": gram, "twice": 4 * gram}, n_boot=4000, seed=1)
    assert float(boot["a"].mean()) == pytest.approx(8 / 9 * st.total_variance, rel=0.05)
    assert torch.allclose(boot["twice"], 4 * boot["a"])                      # paired: the same resamples for all
    lo, hi = percentile_interval(boot["a"])
    assert lo < st.total_variance < hi
    assert torch.equal(pg.bootstrap_total_variances({"a": gram}, n_boot=50, seed=3)["a"],
                       pg.bootstrap_total_variances({"a": gram}, n_boot=50, seed=3)["a"])     # seeded
    with pytest.raises(ValueError):
        pg.bootstrap_total_variances({"a": gram, "b": gram[:3, :3]})
    with pytest.raises(ValueError):
        pg.GradSamples().gram()
