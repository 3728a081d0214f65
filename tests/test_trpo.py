"""TRPO: conjugate gradient, the Fisher-vector product against an explicit Hessian, one constrained step."""
import copy

import pytest
import torch

from utils.lm import build_prompts, sample
from utils.lm.models import new_tiny_model
from utils.rl import trpo
from utils.world import sample_problems


def test_conjugate_gradient_solves_an_spd_system():
    g = torch.Generator().manual_seed(0)
    M = torch.randn(12, 12, generator=g, dtype=torch.float64)
    A = M @ M.T + 0.5 * torch.eye(12, dtype=torch.float64)
    b = torch.randn(12, generator=g, dtype=torch.float64)
    x, res = trpo.conjugate_gradient(lambda v: A @ v, b, iters=30)
    assert torch.allclose(A @ x, b, atol=1e-6) and res[-1] < res[0]
    with pytest.raises(ValueError):
        trpo.conjugate_gradient(lambda v: -v, b, iters=3)


def test_fisher_vector_product_equals_the_kl_hessian():
    """On a softmax policy over 5 actions in 3 states, F v = (d^2 KL / d theta^2) v, computed explicitly."""
    g = torch.Generator().manual_seed(1)
    theta_old = torch.randn(3, 5, generator=g, dtype=torch.float64)
    theta = theta_old.clone().requires_grad_(True)

    def kl_of(t):
        lp_old, lp = theta_old.log_softmax(-1), t.log_softmax(-1)
        return (lp_old.exp() * (lp_old - lp)).sum(-1).mean()

    v = torch.randn(15, generator=g, dtype=torch.float64)
    fvp = trpo.fisher_vector_product(lambda: kl_of(theta), [theta], v, damping=0.1)
    H = torch.autograd.functional.hessian(lambda t: kl_of(t.view(3, 5)), theta_old.reshape(-1))
    assert torch.allclose(fvp, H @ v + 0.1 * v, atol=1e-10)
    # and the Fisher of a softmax row is diag(p) - p p^T (averaged over states)
    p = theta_old.softmax(-1)
    F = torch.block_diag(*[(torch.diag(r) - torch.outer(r, r)) / 3 for r in p])
    assert torch.allclose(H, F, atol=1e-10)


def test_trpo_step_respects_the_trust_region():
    model, tok = new_tiny_model(seed=0)
    model.eval()
    tok.padding_side = "left"
    probs = sample_problems("countdown", 3, 4, split="train")
    s = sample(model, tok, build_prompts(tok, probs), n=2, max_new_tokens=8, seed=0)
    adv = torch.randn(s.completion_mask.shape, generator=torch.Generator().manual_seed(0)) * s.completion_mask
    before = copy.deepcopy(model)
    out = trpo.trpo_step(model, s, adv, max_kl=1e-3, cg_iters=5)
    assert out.accepted and 0 < out.kl <= 1e-3 and out.surrogate_gain > 0 and out.step_norm > 0
    with torch.no_grad():
        old_logits = trpo.completion_logits(before, s)
    surr, kl = trpo.surrogate_and_kl(model, s, old_logits, adv)
    assert float(kl) == pytest.approx(out.kl, rel=1e-4)
    with pytest.raises(ValueError):
        trpo.trpo_step(model, s, adv, max_kl=0)
