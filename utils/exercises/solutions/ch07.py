"""Reference solutions to chapter 07's exercises (spoilers!). The test-suite checks that each passes its grader."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import torch


def kl_rewards_k3(scores: "torch.Tensor", logp: "torch.Tensor", ref_logp: "torch.Tensor", mask: "torch.Tensor",
                  ended: "torch.Tensor", beta: float, eos_penalty: float) -> "torch.Tensor":
    """07.1: ``-beta * k3`` on every real token, ``+ score - eos_penalty * (not ended)`` on each row's last real token."""
    import torch

    m = mask.float()
    log_r = (ref_logp - logp) * m                       # log(pi_ref / pi) at the sampled tokens; 0 on padding
    r = -beta * (torch.expm1(log_r) - log_r) * m        # k3 = (r - 1) - log r
    last = (m.sum(-1) - 1).long()                       # right padding: the last real token of each row
    r[torch.arange(len(last)), last] += scores.float() - eos_penalty * (~ended.bool()).float()
    return r


def penalty_gradient(logits: "torch.Tensor", ref_logits: "torch.Tensor", kind: str) -> "torch.Tensor":
    """07.2: ``E_{y~pi}[k(y) grad_z log pi(y)] = pi * k - pi * (pi . k)`` over the vocabulary (``grad_z log pi(y) = e_y - pi``)."""
    import torch

    lp, lq = logits.log_softmax(-1), ref_logits.log_softmax(-1)
    p = lp.exp()
    k = lp - lq if kind == "k1" else torch.expm1(lq - lp) - (lq - lp)
    return p * k - p * (p * k).sum(-1, keepdim=True)


def explained_variance(values: "torch.Tensor", returns: "torch.Tensor", mask: "torch.Tensor") -> float:
    """07.3: ``1 - Var(R - V) / Var(R)`` over the masked tokens."""
    b = mask.bool()
    r, v = returns[b].float(), values[b].float()
    return float(1 - (r - v).var(unbiased=False) / r.var(unbiased=False))


# ---------------------------------------------------------------- typical wrong answers (each must fail its grader)
def _kl_last_column(sc, lp, rl, m, ended, beta, pen):  # the score on the last column, not the last real token
    r = kl_rewards_k3(sc * 0, lp, rl, m, ended | True, beta, 0.0)
    r[:, -1] += sc.float() - pen * (~ended.bool()).float()
    return r


def _kl_k1(sc, lp, rl, m, ended, beta, pen):  # k1 instead of k3
    import torch

    r = -beta * (lp - rl) * m
    last = (m.sum(-1) - 1).long()
    r[torch.arange(len(last)), last] += sc - pen * (~ended.bool()).float()
    return r


def _kl_unmasked(sc, lp, rl, m, ended, beta, pen):  # the penalty also on the padding
    import torch

    log_r = rl - lp
    r = -beta * (torch.expm1(log_r) - log_r)
    last = (m.sum(-1) - 1).long()
    r[torch.arange(len(last)), last] += sc - pen * (~ended.bool()).float()
    return r


def _pen_k3_inverted(z, zr, kind):  # k3 with r = pi / pi_ref (an estimate of another divergence)
    import torch

    lp, lq = z.log_softmax(-1), zr.log_softmax(-1)
    p = lp.exp()
    k = lp - lq if kind == "k1" else torch.expm1(lp - lq) - (lp - lq)
    return p * k - p * (p * k).sum(-1, keepdim=True)


def _pen_no_baseline(z, zr, kind):  # grad log pi(y) taken as onehot(y): the -pi term is missing
    lp, lq = z.log_softmax(-1), zr.log_softmax(-1)
    return lp.exp() * (lp - lq)


def _ev_squared_correlation(v, r, m):  # the squared correlation
    import torch

    return float(torch.corrcoef(torch.stack([v[m.bool()], r[m.bool()]]))[0, 1] ** 2)


WRONG: dict[str, list[Callable[..., Any]]] = {
    # the score on the last column; k1 instead of k3; the penalty on the padding; no missing-EOS penalty
    "07.1": [
        _kl_last_column,
        _kl_k1,
        _kl_unmasked,
        lambda sc, lp, rl, m, ended, beta, pen: kl_rewards_k3(sc, lp, rl, m, ended | True, beta, pen),
    ],
    # k3 treated as unbiased for the gradient (the KL's gradient for both); the -pi term missing; k3 with the ratio inverted
    "07.2": [
        lambda z, zr, kind: penalty_gradient(z, zr, "k1"),
        _pen_no_baseline,
        _pen_k3_inverted,
    ],
    # the mask ignored; Var(V) / Var(R); the squared correlation
    "07.3": [
        lambda v, r, m: float(1 - (r - v).var() / r.var()),
        lambda v, r, m: float(v[m.bool()].var() / r[m.bool()].var()),
        _ev_squared_correlation,
    ],
}
