"""Graders of chapter 07's exercises: each test takes the student's function and raises ``AssertionError``
with a helpful message on failure (see :func:`utils.exercises.grade`)."""
from __future__ import annotations

from typing import Any, Callable

from .grader import Exercise

Test = Callable[[Callable[..., Any]], None]


def _tensor(x: Any, what: str, shape: tuple[int, ...]):
    import torch

    assert isinstance(x, torch.Tensor), f"return a tensor ({what}), got {type(x).__name__}"
    assert tuple(x.shape) == shape, f"{what}: expected shape {shape}, got {tuple(x.shape)}"
    return x.detach().float()


def _rows(seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([5, 2, 4])
    mask = (torch.arange(5)[None] < lengths[:, None]).float()
    rewards = torch.randn(3, 5, generator=g) * mask
    values = torch.randn(3, 5, generator=g)              # deliberately non-zero on padding: it must be ignored
    return rewards, values, mask


# ---------------------------------------------------------------- 07.1: KL-shaped rewards under right padding
def _kl_inputs(seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([5, 2, 4, 1])
    mask = (torch.arange(5)[None] < lengths[:, None]).float()
    logp = -torch.rand(4, 5, generator=g) * 3 - 20 * (1 - mask)     # garbage on the padding: it must be ignored
    ref = logp + 0.7 * torch.randn(4, 5, generator=g)
    scores = torch.tensor([1.0, 0.0, 1.0, 0.5])
    ended = torch.tensor([True, True, False, True])
    return scores, logp, ref, mask, ended


def _kl_rewards_ref(scores, logp, ref, mask, ended, beta, penalty):
    import torch

    m = mask.float()
    log_r = (ref - logp) * m
    r = -beta * (torch.expm1(log_r) - log_r) * m
    last = (m.sum(-1) - 1).long()
    r[torch.arange(len(last)), last] += scores.float() - penalty * (~ended.bool()).float()
    return r


def _t_kl_rewards_values(fn: Callable) -> None:
    """r_t = -beta * k3_t on every real token, + the score on each row's last real token (not the last column)"""
    import torch

    scores, logp, ref, mask, ended = _kl_inputs()
    ended = torch.ones_like(ended)
    got = _tensor(fn(scores, logp, ref, mask, ended, 0.1, 1.0), "rewards", (4, 5))
    want = _kl_rewards_ref(scores, logp, ref, mask, ended, 0.1, 1.0)
    hint = ""
    m = mask
    k1 = -0.1 * (logp - ref) * m
    lr_inv = (logp - ref) * m
    alts = {"the score on the last *column*: under right padding a row's last real token is at mask.sum() - 1":
            _kl_rewards_ref(scores * 0, logp, ref, mask, ended, 0.1, 0.0) + torch.nn.functional.one_hot(torch.full((4,), 4), 5) * scores[:, None],
            "k1 (log pi - log pi_ref) instead of k3": k1 + (want - _kl_rewards_ref(scores * 0, logp, ref, mask, ended, 0.1, 0.0)),
            "k3 with the ratio inverted (r = pi / pi_ref): that estimates another divergence":
            -0.1 * (torch.expm1(lr_inv) - lr_inv) * m + (want - _kl_rewards_ref(scores * 0, logp, ref, mask, ended, 0.1, 0.0))}
    for why, val in alts.items():
        if torch.allclose(got * m, val * m, atol=1e-4):
            hint = f" - that is {why}"
    assert torch.allclose(got, want, atol=1e-5), (f"expected row 1 {[round(x, 4) for x in want[1].tolist()]}, "
                                                 f"got {[round(x, 4) for x in got[1].tolist()]}{hint}")


def _t_kl_rewards_padding(fn: Callable) -> None:
    """0 on padding, whatever the log-probs hold there; beta scales only the penalty"""
    import torch

    scores, logp, ref, mask, ended = _kl_inputs(1)
    ended = torch.ones_like(ended)
    got = _tensor(fn(scores, logp, ref, mask, ended, 0.3, 0.0), "rewards", (4, 5))
    assert torch.allclose(got * (1 - mask), torch.zeros_like(got), atol=1e-6), "rewards must be 0 on the padding"
    got0 = _tensor(fn(scores, logp, ref, mask, ended, 0.0, 0.0), "rewards", (4, 5))
    last = (mask.sum(-1) - 1).long()
    want0 = torch.zeros(4, 5)
    want0[torch.arange(4), last] = scores
    assert torch.allclose(got0, want0, atol=1e-6), f"with beta = 0 only the scores remain, on the last real tokens: {want0.tolist()}"


def _t_kl_rewards_eos(fn: Callable) -> None:
    """a completion that did not end (no end token: truncated) gets its score minus eos_penalty, the others not"""
    import torch

    scores, logp, ref, mask, ended = _kl_inputs(2)
    got = _tensor(fn(scores, logp, ref, mask, ended, 0.05, 1.0), "rewards", (4, 5))
    want = _kl_rewards_ref(scores, logp, ref, mask, ended, 0.05, 1.0)
    hint = ""
    if torch.allclose(got, _kl_rewards_ref(scores, logp, ref, mask, ~ended, 0.05, 1.0), atol=1e-5):
        hint = " - the penalty went to the rows that *did* end"
    elif torch.allclose(got, _kl_rewards_ref(scores, logp, ref, mask, torch.ones_like(ended), 0.05, 1.0), atol=1e-5):
        hint = " - the penalty is missing"
    assert torch.allclose(got, want, atol=1e-5), f"row 2 did not end: expected {[round(x, 4) for x in want[2].tolist()]}, got {[round(x, 4) for x in got[2].tolist()]}{hint}"


# ---------------------------------------------------------------- 07.2: the gradient of a KL estimate in the reward
def _pg_inputs(seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 7, generator=g)
    ref_logits = logits + 1.2 * torch.randn(3, 7, generator=g)
    return logits, ref_logits


def _pen_grad_ref(logits, ref_logits, kind):
    import torch

    lp, lq = logits.log_softmax(-1), ref_logits.log_softmax(-1)
    p = lp.exp()
    k = lp - lq if kind == "k1" else torch.expm1(lq - lp) - (lq - lp)
    return p * k - p * (p * k).sum(-1, keepdim=True)


def _t_pen_k1(fn: Callable) -> None:
    """k1 in the reward: E[k1 grad log pi] is exactly the gradient of KL(pi || pi_ref) w.r.t. the logits"""
    import torch

    logits, ref_logits = _pg_inputs()
    got = _tensor(fn(logits, ref_logits, "k1"), "expected gradient", (3, 7))
    z = logits.clone().requires_grad_(True)
    kl = (z.softmax(-1) * (z.log_softmax(-1) - ref_logits.log_softmax(-1))).sum()
    (want,) = torch.autograd.grad(kl, z)
    hint = ""
    p = logits.softmax(-1)
    if torch.allclose(got, p * (logits.log_softmax(-1) - ref_logits.log_softmax(-1)), atol=1e-5):
        hint = " - grad_z log pi(y) is onehot(y) - pi, not onehot(y): the -pi part is missing"
    assert torch.allclose(got, want, atol=1e-5), f"expected {[round(x, 4) for x in want[0].tolist()]}, got {[round(x, 4) for x in got[0].tolist()]}{hint}"


def _t_pen_k3(fn: Callable) -> None:
    """k3 in the reward: E[k3 grad log pi] over the whole vocabulary (not the gradient of the KL: k3 is biased here)"""
    import torch

    logits, ref_logits = _pg_inputs(1)
    got = _tensor(fn(logits, ref_logits, "k3"), "expected gradient", (3, 7))
    want = _pen_grad_ref(logits, ref_logits, "k3")
    hint = ""
    if torch.allclose(got, _pen_grad_ref(logits, ref_logits, "k1"), atol=1e-5):
        hint = (" - that is the KL's gradient: k3 has the KL's expectation, but k3(y) * grad log pi(y) does not have"
                " the KL's gradient as its expectation")
    assert torch.allclose(got, want, atol=1e-5), f"expected {[round(x, 4) for x in want[0].tolist()]}, got {[round(x, 4) for x in got[0].tolist()]}{hint}"


def _t_pen_bias(fn: Callable) -> None:
    """the bias of k3 in the reward is pi_ref - pi: descending it moves pi away from the reference"""
    import torch

    logits, ref_logits = _pg_inputs(2)
    diff = _tensor(fn(logits, ref_logits, "k3"), "expected gradient", (3, 7)) - _tensor(fn(logits, ref_logits, "k1"), "expected gradient", (3, 7))
    want = ref_logits.softmax(-1) - logits.softmax(-1)
    assert torch.allclose(diff, want, atol=1e-5), f"k3 - k1 should be pi_ref - pi = {[round(x, 4) for x in want[0].tolist()]}"


# ---------------------------------------------------------------- 07.3: explained variance
def _t_ev_values(fn: Callable) -> None:
    """1 - Var(R - V) / Var(R) over real tokens: 1 for a perfect critic, 0 for the mean, < 0 for a bad one"""
    import torch

    r, v, m = _rows(3)
    ev = float(fn(r, r, m))
    assert abs(ev - 1) < 1e-5, f"a critic that predicts the returns exactly has explained variance 1, got {ev}"
    mean = float(r[m.bool()].mean())
    ev0 = float(fn(torch.full_like(r, mean), r, m))
    assert abs(ev0) < 1e-5, f"a constant critic equal to the mean return explains nothing (0), got {ev0}"
    bad = float(fn(-r, r, m))
    assert bad < -1, f"a critic with the wrong sign is worse than a constant (explained variance < 0), got {bad}"


def _t_ev_mask(fn: Callable) -> None:
    """padding is ignored (values and returns there may be anything)"""
    import torch

    from ..rl.ppo import explained_variance

    r, v, m = _rows(4)
    noisy_r, noisy_v = r + 50 * (1 - m), v - 30 * (1 - m)
    got = float(fn(noisy_v, noisy_r, m))
    want = explained_variance(v, r, m)
    assert abs(got - want) < 1e-4, f"expected {want:.4f} (masked tokens only), got {got:.4f}"
    assert isinstance(fn(v, r, m), (float, torch.Tensor)), "return a float (or a 0-d tensor)"


def _t_ev_ratio(fn: Callable) -> None:
    """it is not Var(V) / Var(R): a critic off by a constant has the same explained variance"""
    r, v, m = _rows(5)
    from ..rl.ppo import explained_variance

    v2 = 0.5 * r + 0.3 * v
    for shift in (0.0, 2.0):
        got, want = float(fn(v2 + shift, r, m)), explained_variance(v2 + shift, r, m)
        assert abs(got - want) < 1e-4, f"shift {shift}: expected {want:.4f}, got {got:.4f}"


EXERCISES: dict[str, Exercise] = {
    "07.1": Exercise("KL-shaped per-token rewards under right padding, with a missing-EOS penalty",
                     [_t_kl_rewards_values, _t_kl_rewards_padding, _t_kl_rewards_eos], "kl_rewards_k3"),
    "07.2": Exercise("the expected gradient of a KL estimate placed in the reward",
                     [_t_pen_k1, _t_pen_k3, _t_pen_bias], "penalty_gradient"),
    "07.3": Exercise("the critic's explained variance", [_t_ev_values, _t_ev_mask, _t_ev_ratio], "explained_variance"),
}
