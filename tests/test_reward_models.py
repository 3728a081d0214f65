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
    pairwise_accuracy,
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
    assert 0.0 <= pairwise_accuracy(model, tok, pairs) <= 1.0
    r = score_completions(model, tok, probs[:3], ["<think>1+1=2</think><answer>2</answer>", None, "x" * 5000])
    assert r.shape == (3,) and torch.isfinite(r).all()
    assert ensemble_scores([model, model], tok, probs[:2], ["a", "b"]).shape == (2, 2)
