"""Preference losses against their closed forms (chapter 09 checks them against TRL's trainers)."""
import math

import torch

from utils.prefs import dpo_loss, implicit_rewards, ipo_loss, listwise_dpo_loss, orpo_loss, simpo_loss
from utils.prefs.losses import log_odds
from utils.reward_models import bradley_terry_loss

torch.manual_seed(0)
W, L, RW, RL = (-torch.rand(6) * 20 for _ in range(4))


def sig(x):
    return 1 / (1 + math.exp(-x))


def test_dpo_is_bradley_terry_on_implicit_rewards():
    r_w, r_l = implicit_rewards(W, L, RW, RL, beta=0.1)
    assert torch.allclose(dpo_loss(W, L, RW, RL, 0.1).mean(), bradley_terry_loss(r_w, r_l), rtol=1e-6)
    i = 2
    want = -math.log(sig(0.1 * ((W[i] - RW[i]) - (L[i] - RL[i])).item()))
    assert abs(dpo_loss(W, L, RW, RL, 0.1)[i].item() - want) < 1e-5
    # at the reference, the loss is log 2 whatever the data
    assert torch.allclose(dpo_loss(W, L, W, L, 0.5), torch.full((6,), math.log(2)))


def test_ipo_simpo_orpo_closed_forms():
    n_w, n_l = torch.full((6,), 4.0), torch.full((6,), 8.0)
    want = ((W - RW) / 4 - (L - RL) / 8 - 1 / 0.2) ** 2
    assert torch.allclose(ipo_loss(W, L, RW, RL, n_w, n_l, beta=0.1), want)
    mw, ml = W / 10, L / 10
    assert torch.allclose(simpo_loss(mw, ml, 2.0, 0.5), -torch.nn.functional.logsigmoid(2 * (mw - ml) - 0.5))
    p = 0.3
    assert abs(log_odds(torch.tensor(math.log(p))).item() - math.log(p / (1 - p))) < 1e-6
    o = orpo_loss(torch.tensor([1.0]), torch.tensor([math.log(0.3)]), torch.tensor([math.log(0.1)]), lam=0.5)
    want = 1.0 - 0.5 * math.log(sig(math.log(0.3 / 0.7) - math.log(0.1 / 0.9)))
    assert abs(o.item() - want) < 1e-6
    assert torch.isfinite(log_odds(torch.tensor([0.0, -1e-9, -50.0]))).all()


def test_listwise_reduces_to_dpo_for_two():
    logps, ref = torch.stack([W, L], 1), torch.stack([RW, RL], 1)
    assert abs(listwise_dpo_loss(logps, ref, 0.1).item() - dpo_loss(W, L, RW, RL, 0.1).mean().item()) < 1e-6
