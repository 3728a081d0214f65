"""The reward-model core: losses, scoring, training, the shared course reward model."""
import math

import pytest
import torch

from utils.lm.logprobs import kl_estimate
from utils.reward_models import (
    bradley_terry_loss,
    ensemble_scores,
    load_reward_model,
    pair_batch,
    plackett_luce_loss,
    score_completions,
    train_reward_model,
)
from utils.world import sample_problems
from utils.world.preferences import preference_pairs


def test_bradley_terry_matches_closed_form():
    r_w, r_l = torch.tensor([1.0, 0.0, -2.0]), torch.tensor([0.0, 0.0, 1.0])
    want = -sum(math.log(1 / (1 + math.exp(-(a - b)))) for a, b in zip(r_w.tolist(), r_l.tolist())) / 3
    assert abs(bradley_terry_loss(r_w, r_l).item() - want) < 1e-6
    with pytest.raises(ValueError):
        bradley_terry_loss(r_w, r_l[:2])


def test_plackett_luce_reduces_to_bradley_terry_and_enumerates():
    s = torch.randn(7, 2)
    assert abs(plackett_luce_loss(s).item() - bradley_terry_loss(s[:, 0], s[:, 1]).item()) < 1e-6
    # K = 3: the probabilities of all 6 orderings sum to one
    import itertools
    x = torch.tensor([0.3, -1.0, 2.0])
    total = sum(math.exp(-plackett_luce_loss(x[list(perm)][None]).item()) for perm in itertools.permutations(range(3)))
    assert abs(total - 1.0) < 1e-5
    # padding: a row of 2 valid items among 3 equals the 2-item loss
    padded = torch.tensor([[1.0, 0.5, 9.0]])
    assert abs(plackett_luce_loss(padded, torch.tensor([2])).item() - plackett_luce_loss(padded[:, :2]).item()) < 1e-6


def test_kl_estimators():
    torch.manual_seed(0)
    logp, ref = torch.randn(4, 5), torch.randn(4, 5)
    mask = torch.ones(4, 5)
    mask[0, 3:] = 0
    for kind in ("k1", "k2", "k3"):
        est = kl_estimate(logp, ref, mask, kind)
        assert est.shape == (4, 5) and (est[0, 3:] == 0).all()
    assert (kl_estimate(logp, ref, mask, "k3") >= 0).all()
    assert kl_estimate(logp, logp, mask, "k3").abs().max() == 0
    with pytest.raises(ValueError):
        kl_estimate(logp, ref, mask, "k4")


def test_reward_model_trains_and_scores_anything():
    model, tok = load_reward_model("tiny-sft")
    probs = sample_problems("countdown", 3, 8, split="train")
    pairs = preference_pairs(probs, 2, tau=0.05)
    batch = pair_batch(tok, pairs)
    assert batch["input_ids"].shape[0] == 2 * len(pairs)
    losses = train_reward_model(model, tok, pairs, steps=15, batch_size=8, lr=3e-3)
    assert losses[-1] < losses[0]
    r = score_completions(model, tok, probs[:3], ["<think>1+1=2</think><answer>2</answer>", None, "x" * 5000])
    assert r.shape == (3,) and torch.isfinite(r).all()
    assert ensemble_scores([model, model], tok, probs[:2], ["a", "b"]).shape == (2, 2)


# ------------------------------------------------------------------ chapter 05: centering, rankings, TRL, calibration
from utils.numerics import rel_error  # noqa: E402
from utils.reward_models.calibration import (  # noqa: E402
    annotator_probability,
    calibration_curve,
    error_rate_by_disagreement,
    expected_calibration_error,
)
from utils.reward_models.model import implicit_rewards  # noqa: E402
from utils.reward_models.train import (  # noqa: E402
    margin_accuracy,
    pair_margins,
    preference_rankings,
    ranking_batch,
    ranking_pairs,
    train_plackett_luce,
)
from utils.reward_models.trl_glue import reward_trainer, trainer_batch, trainer_loss  # noqa: E402


def test_bradley_terry_centering_and_margin_terms():
    r_w, r_l = torch.tensor([1.0, 2.0]), torch.tensor([0.5, -1.0])
    base = -torch.nn.functional.logsigmoid(r_w - r_l - 0.3).mean()
    got = bradley_terry_loss(r_w, r_l, margin=0.3, center_coefficient=0.01)
    assert abs(got.item() - (base + 0.01 * ((r_w + r_l) ** 2).mean()).item()) < 1e-6
    # a constant added to both rewards leaves the plain loss unchanged (identifiable only up to a constant)
    assert abs(bradley_terry_loss(r_w + 7, r_l + 7).item() - bradley_terry_loss(r_w, r_l).item()) < 1e-5


def test_rankings_follow_the_plackett_luce_annotator():
    probs = sample_problems("countdown", 3, 40, split="train")
    clean = preference_rankings(probs, 4, tau=1e-3, seed=0)
    assert len(clean) > 30 and all(len(r.completions) == 4 for r in clean)
    assert all(list(r.rewards) == sorted(r.rewards, reverse=True) for r in clean)  # tau -> 0: sorted by the truth
    noisy = preference_rankings(probs, 4, tau=5.0, seed=0)
    assert any(list(r.rewards) != sorted(r.rewards, reverse=True) for r in noisy)
    pairs = ranking_pairs(clean[:3])
    assert len(pairs) == 3 * 6 and all(p.chosen_reward > p.rejected_reward for p in pairs)
    with pytest.raises(ValueError):
        preference_rankings(probs, 1)
    with pytest.raises(ValueError):
        preference_rankings(probs, 3, tau=0.0)


def test_plackett_luce_annotator_is_bradley_terry_for_two():
    # the Gumbel-max sort with k = 2 prefers a over b with probability sigmoid((r_a - r_b) / tau)
    probs = sample_problems("countdown", 3, 400, split="train")
    tau = 0.5
    rk = preference_rankings(probs, 2, tau=tau, seed=1)
    want = torch.tensor([1 / (1 + math.exp(-abs(r.rewards[0] - r.rewards[1]) / tau)) for r in rk]).mean()
    got = torch.tensor([float(r.rewards[0] > r.rewards[1]) for r in rk]).mean()
    # binomial standard error with n ~ 400 is ~0.02; 4 of them leave room for chance
    assert abs(float(got - want)) < 0.08, (float(got), float(want))


def test_ranking_batch_layout_and_pl_training():
    model, tok = load_reward_model("tiny-sft")
    rk = preference_rankings(sample_problems("countdown", 3, 8, split="train"), 3, tau=0.05)
    b = ranking_batch(tok, rk[:2])
    assert b["input_ids"].shape[0] == 6
    first = pair_batch(tok, ranking_pairs(rk[:1])[:1])["input_ids"][0]
    assert torch.equal(b["input_ids"][0, : first.shape[0]], first)  # row 0: ranking 0's best response
    losses = train_plackett_luce(model, tok, rk, steps=12, batch_size=4, lr=3e-3)
    assert losses[-1] < losses[0]
    with pytest.raises(ValueError):
        ranking_batch(tok, [rk[0], preference_rankings([rk[0].problem], 2)[0]])


def test_margins_accuracy_and_calibration():
    probs = sample_problems("countdown", 3, 10, split="test")
    pairs = preference_pairs(probs, 2, tau=0.2)
    t = torch.tensor([p.chosen_reward - p.rejected_reward for p in pairs])
    assert margin_accuracy(t, pairs) == 1.0 and margin_accuracy(-t, pairs) == 0.0
    with pytest.raises(ValueError):
        margin_accuracy(t[:-1], pairs)
    p = annotator_probability(pairs, 0.2)
    assert expected_calibration_error(p, p) < 1e-6
    assert expected_calibration_error(torch.full_like(p, 0.5), torch.ones_like(p)) == pytest.approx(0.5)
    c = calibration_curve(torch.tensor([0.05, 0.05, 0.95]), torch.tensor([0.0, 1.0, 1.0]), n_bins=10)
    assert c["pred"] == pytest.approx([0.05, 0.95]) and c["truth"] == [0.5, 1.0] and c["count"] == [2.0, 1.0]
    # three "models": exact on the first half of the pairs, split on the second half
    n = len(pairs)
    m = torch.stack([t, t, t])
    m[:, n // 2 :] = torch.tensor([1.0, -1.0, -1.2])[:, None] * t[n // 2 :].abs().clamp(min=0.1)
    groups = error_rate_by_disagreement(m, pairs, n_groups=2)
    assert groups["std"][0] < groups["std"][1] and groups["error"][0] == 0.0
    with pytest.raises(ValueError):
        error_rate_by_disagreement(t[None], pairs)
    # relative disagreement: members agreeing on a margin near 0 (here with opposite signs) rank as most uncertain
    m2 = torch.stack([t * 3, t * 2, t * 4])
    m2[:, 0] = t[0].sign() * torch.tensor([0.01, -0.01, 0.02])      # right on average, barely
    rel = error_rate_by_disagreement(m2, pairs, n_groups=len(pairs), measure="relative")
    assert rel["std"][-1] == max(rel["std"]) and rel["std"][-1] > 2 and rel["error"][-1] == 0.0
    assert error_rate_by_disagreement(m2, pairs, n_groups=len(pairs))["std"][0] < 0.02  # by the raw std it is the surest
    with pytest.raises(ValueError):
        error_rate_by_disagreement(m2, pairs, measure="iqr")


def test_implicit_reward():
    from utils.lm import load_model

    policy, tok = load_model("tiny-sft")
    probs = sample_problems("countdown", 3, 5, split="test")
    comps = [p.completion() for p in probs]
    assert implicit_rewards(policy, policy, tok, probs, comps).abs().max() == 0
    r1 = implicit_rewards(policy, policy, tok, probs, comps, batch_size=1)
    assert r1.shape == (5,) and r1.abs().max() == 0
    with pytest.raises(ValueError):
        implicit_rewards(policy, policy, tok, probs, comps, beta=0.0)


def test_our_bradley_terry_loss_matches_trl_reward_trainer():
    """The same pairs, tokenized by us and by TRL: same ids; our loss = RewardTrainer.compute_loss."""
    model, tok = load_reward_model("tiny-sft", seed=3)
    pairs = preference_pairs(sample_problems("countdown", 3, 6, split="train"), 2, tau=0.2)
    margins = [0.1 * i for i in range(len(pairs))]
    trainer = reward_trainer(model, tok, pairs, margins=margins, center_rewards_coefficient=0.01)
    theirs = trainer_batch(trainer, 0, len(pairs))
    ours = pair_batch(tok, pairs)
    assert torch.equal(theirs["input_ids"], ours["input_ids"]) and torch.equal(theirs["attention_mask"], ours["attention_mask"])
    r_w, r_l = model(**ours).logits.squeeze(-1).chunk(2)
    mine = bradley_terry_loss(r_w, r_l, margin=torch.tensor(margins), center_coefficient=0.01)
    # one fp32 forward pass on the same ids and weights; both sides reduce 12 numbers, so only summation order
    # can differ: a few ulps (1e-7); 1e-5 leaves room for any x86 kernel (AVX2 / AVX-512) and thread count
    assert rel_error(mine, trainer_loss(trainer, theirs)) < 1e-5


def test_course_reward_model_trains_saves_and_loads(tmp_path, monkeypatch):
    from utils.reward_models import course_reward_model
    from utils.runtime import get_profile

    monkeypatch.setenv("COURSE_BUILD", str(tmp_path))
    P = get_profile("smoke")
    model, tok = course_reward_model(P)
    assert (P.model_dir("rm-05") / "config.json").exists()
    again, _ = course_reward_model(P)
    probs = sample_problems("countdown", 3, 3, split="test")
    comps = [p.completion() for p in probs]
    assert torch.allclose(score_completions(model, tok, probs, comps), score_completions(again, tok, probs, comps))
    assert pair_margins(again, tok, preference_pairs(probs, 1)).shape[0] >= 1


@pytest.mark.parametrize("profile", ["smoke", "cpu", "gpu"])
def test_every_recipe_fits_the_world(profile):
    """The recipe's problem count exists in the training split (a gpu dry run uses smoke sizes, so only this sees gpu's)."""
    from utils.reward_models.train import RECIPE

    assert len(sample_problems("countdown", 3, RECIPE[profile]["n"], split="train")) == RECIPE[profile]["n"]


def test_profile_recipe_picks_the_row_and_a_dry_run_its_own(monkeypatch):
    """Profile.recipe: the profile's row (a copy); a gpu dry run the table's dry_run row, else the smoke row."""
    from utils.reward_models.process import RECIPE as PRM_RECIPE
    from utils.reward_models.train import RECIPE
    from utils.runtime import get_profile

    cpu = get_profile("cpu")
    assert cpu.recipe(RECIPE) == RECIPE["cpu"] and cpu.recipe(RECIPE) is not RECIPE["cpu"]
    monkeypatch.setenv("COURSE_DRY_RUN", "1")
    dry = get_profile("gpu")
    assert dry.recipe(RECIPE) == RECIPE["dry_run"] and dry.recipe(RECIPE)["backbone"] is None   # the gpu model
    assert dry.recipe(PRM_RECIPE) == PRM_RECIPE["smoke"]


def test_micro_batches_give_the_full_batch_gradient():
    """Gradient accumulation over micro-batches of pairs = one pass over the batch (Bradley-Terry is a mean over pairs)."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    from utils.reward_models.train import train_reward_model

    pairs = preference_pairs(sample_problems("countdown", 3, 6, split="train"), 1)
    grads, losses = [], []

    def read_grad(opt, args, kwargs):   # the (clipped) gradient the optimiser steps with; the loop frees .grad after
        grads.append(torch.cat([p.grad.flatten() for g in opt.param_groups for p in g["params"] if p.grad is not None]))

    hook = register_optimizer_step_pre_hook(read_grad)
    try:
        for micro in (None, 2, 4):  # 4 does not divide 6: the last chunk is smaller and weighted by its share
            model, tok = load_reward_model("tiny-sft", seed=0)
            losses.append(train_reward_model(model, tok, pairs, steps=1, batch_size=6, lr=0.0, warmup=1, micro_batch=micro)[0])
    finally:
        hook.remove()
    assert len(grads) == 3 and all(p.grad is None for p in model.parameters())
    for g, loss in zip(grads[1:], losses[1:]):
        # a sum of 2-3 fp32 partial gradients instead of one: rounding differences of ~1e-7 relative, bound 1e-5
        assert rel_error(g, grads[0]) < 1e-5 and math.isclose(loss, losses[0], rel_tol=1e-5)
    with pytest.raises(ValueError, match="micro_batch"):
        train_reward_model(model, tok, pairs, steps=1, batch_size=6, micro_batch=0)
