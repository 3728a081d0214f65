"""utils.rl.oreo: the soft Bellman targets and residuals, OREO's two losses (values and gradients), the offline
data and its (correct, failed) pairs, reading values at step boundaries."""
import copy

import pytest
import torch

from utils import world
from utils.lm import load_model
from utils.numerics import rel_error
from utils.prefs.data import correct_failed_pairs
from utils.rl import oreo


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    lens = torch.tensor([5, 2, 4])
    m = (torch.arange(5)[None] < lens[:, None]).double()
    return (torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64), -torch.rand(3, 5, generator=g, dtype=torch.float64),
            -torch.rand(3, 5, generator=g, dtype=torch.float64), torch.rand(3, 5, generator=g, dtype=torch.float64), m)


def test_soft_targets_by_hand():
    r, lp, ref, _, m = _batch()
    t = oreo.soft_targets(r, lp - ref, m, 0.5)
    for b in range(3):
        n = int(m[b].sum())
        for i in range(5):
            want = float(r[b]) - 0.5 * float((lp - ref)[b, i:n].sum()) if i < n else 0.0
            assert abs(float(t[b, i]) - want) < 1e-12


def test_residuals_vanish_exactly_on_the_targets_and_losses_are_zero():
    r, lp, ref, _, m = _batch(1)
    v = oreo.soft_targets(r, lp - ref, m, 0.3)
    assert float(oreo.bellman_residuals(v, r, lp - ref, m, 0.3).abs().max()) < 1e-12
    assert float(oreo.value_loss(v, r, lp, ref, m, 0.3)) < 1e-24
    assert float(oreo.policy_loss(v, r, lp, ref, m, 0.3)) < 1e-24


def test_value_loss_trains_only_the_value_and_policy_loss_only_the_current_token():
    r, lp0, ref, v0, m = _batch(2)
    lp, v = lp0.clone().requires_grad_(True), v0.clone().requires_grad_(True)
    g_lp, g_v = torch.autograd.grad(oreo.value_loss(v, r, lp, ref, m, 0.5), [lp, v], allow_unused=True)
    assert g_lp is None and g_v is not None
    lp, v = lp0.clone().requires_grad_(True), v0.clone().requires_grad_(True)
    g_lp, g_v = torch.autograd.grad(oreo.policy_loss(v, r, lp, ref, m, 0.5), [lp, v], allow_unused=True)
    assert g_v is None
    # d loss / d logp[b, t] = 2 beta residual_t / (n_b B): the residual is the value loss's one
    resid = (v0 - oreo.soft_targets(r, lp0 - ref, m, 0.5)) * m
    want = 2 * 0.5 * resid / m.sum(-1, keepdim=True) / 3
    assert rel_error(g_lp, want) < 1e-12   # float64, a handful of terms


def test_kl_regulariser_is_added_with_alpha():
    r, lp, ref, v, m = _batch(3)
    kl = torch.rand(3, 5, dtype=torch.float64)
    base = oreo.policy_loss(v, r, lp, ref, m, 0.5)
    with_kl = oreo.policy_loss(v, r, lp, ref, m, 0.5, kl=kl, alpha=0.2)
    assert abs(float(with_kl - base) - 0.2 * float((kl * m).sum() / m.sum())) < 1e-12


def test_validation():
    with pytest.raises(ValueError):
        oreo.soft_targets(torch.zeros(2), torch.zeros(3, 4), torch.ones(3, 4), 0.1)
    with pytest.raises(ValueError):
        oreo.OREOConfig(beta=0.0)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model, tok = load_model("tiny-sft")
    probs = world.sample_problems("countdown", 3, 6, split="train", seed=0)
    data = oreo.offline_data(model, tok, probs, 4, max_new_tokens=40, seed=0)
    return model, tok, data


def test_offline_data_pairs_and_correct(tiny):
    _, _, data = tiny
    assert len(data) == 24 and data.rewards.shape == (24,)
    assert all(world.score(p, t) == r for p, t, r in zip(data.problems, data.texts, data.rewards.tolist()))
    pairs = correct_failed_pairs(data.rewards, data.k)
    for c, r in pairs:
        assert data.problems[c].uid == data.problems[r].uid and data.rewards[c] == 1 and data.rewards[r] == 0
    used = [i for pr in pairs for i in pr]
    assert len(used) == len(set(used))
    assert all(world.score(p, t) == 1.0 for p, t in data.correct())


def test_train_oreo_runs_and_moves_the_policy(tiny):
    model, tok, data = tiny
    pol = copy.deepcopy(model)
    res = oreo.train_oreo(pol, model, data, oreo.OREOConfig(steps=3, batch_size=8, lr=1e-3), progress=False)
    assert len(res.history) == 3 and all(torch.isfinite(torch.tensor(h["value_loss"])) for h in res.history)
    assert any(not torch.equal(a, b) for a, b in zip(pol.parameters(), model.parameters()))
    # the value at step boundaries: one per step, and the critic's head at init is the constant it starts from
    sv = oreo.step_values(oreo.Critic(model, init_value=0.25), tok, data.problems[:4], data.texts[:4])
    assert [len(v) for v in sv] == [len(world.step_boundaries(t)) for t in data.texts[:4]]
    assert all(abs(x - 0.25) < 1e-6 for v in sv for x in v)


def test_gradient_checkpointing_changes_no_update(tiny):
    """OREO with activations recomputed in backward: the same curves and weight updates."""
    model, _, data = tiny
    out = []
    for gc in (False, True):
        pol = copy.deepcopy(model)
        res = oreo.train_oreo(pol, model, data, oreo.OREOConfig(steps=2, batch_size=8, lr=1e-3, gradient_checkpointing=gc),
                              progress=False)
        assert not pol.is_activation_checkpointing and not res.critic.lm.is_activation_checkpointing
        assert all(p.grad is None for p in [*pol.parameters(), *res.critic.parameters()])
        out.append((res.curve("value_loss") + res.curve("policy_loss"), torch.cat([p.detach().flatten() for p in pol.parameters()])))
    (c0, w0), (c1, w1) = out
    base = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert max(abs(a - b) / max(abs(a), 1e-6) for a, b in zip(c0, c1)) < 1e-4
    assert rel_error(w1 - base, w0 - base) < 1e-3


def test_shuffled_rewards_permute_within_each_problem(tiny):
    _, _, data = tiny
    pl = oreo.shuffled_rewards(data, seed=3)
    assert pl.samples is data.samples and pl.problems == data.problems and pl.k == data.k
    # every problem keeps its number of correct trajectories; only which rows carry them changes
    assert torch.equal(pl.rewards.view(-1, data.k).sum(1), data.rewards.view(-1, data.k).sum(1))
    assert torch.equal(oreo.shuffled_rewards(data, seed=3).rewards, pl.rewards)   # seeded
    with pytest.raises(ValueError):
        oreo.shuffled_rewards(oreo.OfflineData(data.problems[:3], data.samples, data.rewards[:3], 2))


def test_train_value_fits_the_monte_carlo_target(tiny):
    """beta = 0: the value loss against R itself; the critic's loss falls from the constant start."""
    model, tok, data = tiny
    critic = oreo.Critic(model, init_value=float(data.rewards.mean()))
    losses = oreo.train_value(critic, data, steps=6, batch_size=8, lr=1e-3)
    assert len(losses) == 6 and all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-2:]) < sum(losses[:2])
    assert all(p.grad is None for p in critic.parameters()) and not critic.training
