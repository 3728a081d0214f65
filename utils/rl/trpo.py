"""TRPO's KL-constrained natural-gradient step, from scratch (Schulman et al. 2015; survey §3.2.2-3.2.3).

TRPO maximises the importance-weighted surrogate ``L(theta) = mean_t rho_t A_t`` (``rho_t = pi_theta / pi_old``)
subject to ``KLbar(theta) = mean_t KL(pi_old(.|s_t) || pi_theta(.|s_t)) <= delta``. Around ``theta_old``,
``L ~ g . d`` and ``KLbar ~ 1/2 d^T F d`` (``F`` = the Hessian of ``KLbar`` at ``theta_old`` = the Fisher
information of the token distributions), so the step is

    d = sqrt(2 delta / (s^T F s)) * s,   s = F^{-1} g,

found without forming ``F``: :func:`conjugate_gradient` needs only products ``F v``
(:func:`fisher_vector_product`: the gradient of ``grad(KLbar) . v``, double backpropagation), and a
backtracking line search (:func:`trpo_step`) halves ``d`` until the *exact* KL is within ``delta`` and the
surrogate improves. PPO replaces all of this by clipping the ratio and a few first-order steps.

Shapes: ``B`` sequences, ``T`` completion tokens, ``V`` vocabulary, ``N`` parameters.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from transformers import PreTrainedModel

from ..lm.logprobs import completion_logits, gather_logprobs
from ..lm.samples import Samples
from .policy_gradient import flat_grad


def surrogate_and_kl(model: PreTrainedModel, samples: Samples, old_logits: torch.Tensor, advantages: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(L, KLbar)`` at the model's current parameters, both differentiable scalars.

    ``L = mean_t (pi_theta(y_t)/pi_old(y_t)) A_t`` and ``KLbar = mean_t KL(pi_old(.|s_t) || pi_theta(.|s_t))``
    (exact, from the full distributions), means over the ``mask``'s tokens.

    Args:
        old_logits: ``[B, T, V]`` logits of ``pi_old`` (constants; :func:`completion_logits` before the step).
        advantages: ``[B, T]`` (constants).
    """
    m = samples.completion_mask.float()
    n = m.sum().clamp(min=1)
    lp_new = completion_logits(model, samples).log_softmax(-1)
    lp_old = old_logits.detach().float().log_softmax(-1)
    ids = samples.completion_ids
    ratio = (gather_logprobs(lp_new, ids) - gather_logprobs(lp_old, ids)).exp()
    surr = (ratio * advantages.detach().float() * m).sum() / n
    kl = ((lp_old.exp() * (lp_old - lp_new)).sum(-1) * m).sum() / n
    return surr, kl


def fisher_vector_product(kl_fn: Callable[[], torch.Tensor], params: Sequence[torch.Tensor], v: torch.Tensor,
                          damping: float = 0.0) -> torch.Tensor:
    """``[N]`` ``(F + damping I) v`` with ``F`` the Hessian of ``kl_fn()`` (a KL that is 0, and minimal, at the
    current parameters), by double backpropagation: ``F v = grad(grad(KL) . v)``."""
    kl = kl_fn()
    g = torch.autograd.grad(kl, list(params), create_graph=True, allow_unused=True)
    flat = torch.cat([(x if x is not None else torch.zeros_like(p)).reshape(-1) for x, p in zip(g, params)])
    hv = flat_grad((flat * v.detach()).sum(), params)
    return hv + damping * v


def conjugate_gradient(avp: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, iters: int = 10,
                       tol: float = 1e-10) -> tuple[torch.Tensor, list[float]]:
    """Solve ``A x = b`` for a symmetric positive-definite ``A`` given only ``avp(v) = A v``.

    Returns ``(x [N], residual norms)``: ``||b - A x_k||^2`` after each iteration (at most ``iters``).
    """
    if iters < 1:
        raise ValueError(f"conjugate gradient needs iters >= 1, got {iters}")
    x = torch.zeros_like(b)
    r, p = b.clone(), b.clone()
    rr = float(r @ r)
    hist = [rr]
    for _ in range(iters):
        if rr < tol:
            break
        Ap = avp(p)
        pAp = float(p @ Ap)
        if pAp <= 0:
            raise ValueError("conjugate gradient met a direction of non-positive curvature (add damping)")
        alpha = rr / pAp
        x += alpha * p
        r -= alpha * Ap
        rr_new = float(r @ r)
        p = r + (rr_new / rr) * p
        rr = rr_new
        hist.append(rr)
    return x, hist


def _get_flat(params: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in params]).clone()


def _set_flat(params: Sequence[torch.Tensor], flat: torch.Tensor) -> None:
    i = 0
    with torch.no_grad():
        for p in params:
            n = p.numel()
            p.copy_(flat[i : i + n].view_as(p))
            i += n


@dataclass
class TRPOStep:
    """What :func:`trpo_step` did.

    Attributes:
        accepted: whether the line search found a step (else the parameters are unchanged).
        step_frac: the fraction of the full natural-gradient step taken (1, 1/2, 1/4, ...).
        step_norm: ``||theta_new - theta_old||``.
        kl: exact ``KLbar`` after the step; surrogate_gain: ``L(theta_new) - L(theta_old)``;
        expected_gain: the linear prediction ``g . d`` of the full step; cg_residuals: CG's residual norms.
    """

    accepted: bool
    step_frac: float
    step_norm: float
    kl: float
    surrogate_gain: float
    expected_gain: float
    cg_residuals: list[float]


def trpo_step(model: PreTrainedModel, samples: Samples, advantages: torch.Tensor, max_kl: float = 0.01,
              cg_iters: int = 10, damping: float = 0.01, backtrack: float = 0.5, max_backtracks: int = 10) -> TRPOStep:
    """One TRPO update of ``model`` (in place) on a batch of its own samples.

    Args:
        samples: completions sampled from the model as it is now (``pi_old``).
        advantages: ``[B, T]`` advantages (e.g. whitened GAE).
        max_kl: the trust region ``delta`` on ``mean_t KL(pi_old || pi_theta)``.
        damping: added to ``F``'s diagonal (``F`` is singular in directions that do not change the outputs).
        backtrack, max_backtracks: the line search shrinks the step by ``backtrack`` up to that many times.
    """
    if max_kl <= 0:
        raise ValueError(f"max_kl must be positive, got {max_kl}")
    # F v differentiates a gradient (double backpropagation): the fused attention kernels have no second
    # derivative, the plain ("math") attention has
    with sdpa_kernel(SDPBackend.MATH):
        return _trpo_step(model, samples, advantages, max_kl, cg_iters, damping, backtrack, max_backtracks)


def _trpo_step(model: PreTrainedModel, samples: Samples, advantages: torch.Tensor, max_kl: float, cg_iters: int,
               damping: float, backtrack: float, max_backtracks: int) -> TRPOStep:
    params = [p for p in model.parameters() if p.requires_grad]
    with torch.no_grad():
        old_logits = completion_logits(model, samples)
    surr0, _ = surrogate_and_kl(model, samples, old_logits, advantages)
    g = flat_grad(surr0, params)
    kl_fn = lambda: surrogate_and_kl(model, samples, old_logits, advantages)[1]  # noqa: E731
    s, res = conjugate_gradient(lambda v: fisher_vector_product(kl_fn, params, v, damping), g, cg_iters)
    sFs = float(s @ fisher_vector_product(kl_fn, params, s, damping))
    full = s * (2 * max_kl / max(sFs, 1e-12)) ** 0.5
    expected = float(g @ full)
    theta0, base = _get_flat(params), float(surr0.detach())
    frac = 1.0
    for _ in range(max_backtracks + 1):
        _set_flat(params, theta0 + frac * full)
        with torch.no_grad():
            surr, kl = surrogate_and_kl(model, samples, old_logits, advantages)
        if float(kl) <= max_kl and float(surr) > base:
            return TRPOStep(True, frac, float((frac * full).norm()), float(kl), float(surr) - base, expected, res)
        frac *= backtrack
    _set_flat(params, theta0)
    return TRPOStep(False, 0.0, 0.0, 0.0, 0.0, expected, res)


__all__ = ["TRPOStep", "completion_logits", "conjugate_gradient", "fisher_vector_product", "surrogate_and_kl", "trpo_step"]
