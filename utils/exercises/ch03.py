"""Graders of chapter 03's exercises: each test takes the student's function and raises ``AssertionError``
with a helpful message on failure (see :func:`utils.exercises.grade`).

* 03.1 (★) the forgetting metric;
* 03.2 (★★) a rejection-sampling filter that also checks every step (process supervision, §3.1.4);
* 03.3 (★★) GKD's generalised Jensen-Shannon divergence per token (Agarwal et al. 2024).
"""
from __future__ import annotations

from typing import Any, Callable

from .grader import Exercise

Test = Callable[[Callable[..., Any]], None]


# ---------------------------------------------------------------- 03.1: the forgetting metric
def _t_forget_values(fn: Callable) -> None:
    """mean over the skills NOT trained of (accuracy before - accuracy after)"""
    before = {"countdown-3": 0.40, "addition-2": 0.95, "addition-3": 0.90, "addition-4": 0.80}
    after = {"countdown-3": 0.60, "addition-2": 0.93, "addition-3": 0.70, "addition-4": 0.50}
    got = fn(before, after, ["countdown-3"])
    want = (0.02 + 0.20 + 0.30) / 3
    assert abs(got - want) < 1e-9, f"expected {want:.4f}, got {got}"
    got2 = fn(before, after, ["countdown-3", "addition-4"])
    assert abs(got2 - 0.11) < 1e-9, f"with addition-4 also trained, expected (0.02 + 0.20) / 2 = 0.11, got {got2}"


def _t_forget_sign(fn: Callable) -> None:
    """zero when nothing changes; negative (not clipped) when the held-out skills improve"""
    before = {"a": 0.5, "b": 0.6, "c": 0.1}
    assert abs(fn(before, dict(before), ["a"])) < 1e-12, "no change should give 0"
    after = {"a": 0.9, "b": 0.7, "c": 0.3}
    got = fn(before, after, ["a"])
    assert abs(got - (-0.15)) < 1e-9, f"improvements are negative forgetting (backward transfer): expected -0.15, got {got}"


# ---------------------------------------------------------------- 03.2: the step-checked filter
def _step_case():
    from ..world.countdown import make_problem

    p = make_problem([3, 5, 7], 26, ["7*3=21", "21+5=26"], "(7*3)+5")
    q = make_problem([2, 4, 6], 14, ["4*2=8", "8+6=14"], "(4*2)+6")
    good = "<think>7*3=21,21+5=26</think><answer>(7*3)+5</answer>"
    good2 = "<think>3*7=21,5+21=26</think><answer>5+3*7</answer>"
    return p, q, good, good2


def _t_step_filter(fn: Callable) -> None:
    """keeps a sample only if its answer verifies, it is well-formed, and it has steps that are ALL valid"""
    p, q, good, good2 = _step_case()
    wrong = "<think>7*3=21</think><answer>7*3</answer>"                       # wrong answer
    sloppy = "the answer is <answer>(7*3)+5</answer>"                        # right answer, not in the format
    no_steps = "<think></think><answer>(7*3)+5</answer>"                      # right answer, no steps at all
    bad_first = "<think>7*3=22,22+4=26</think><answer>(7*3)+5</answer>"      # right answer, wrong arithmetic
    bad_last = "<think>7*3=21,21+6=26</think><answer>(7*3)+5</answer>"       # first step fine, second invalid
    q_bad = "<think>4*2=8,8+6=15</think><answer>(4*2)+6</answer>"
    samples = [[wrong, bad_first, good, sloppy, no_steps, bad_last, good2], [q_bad, wrong]]
    got = [(a, b.strip()) for a, b in fn([p, q], samples, None)]
    want = [(p, good), (p, good2)]
    labels = {good: "good", good2: "good2", bad_first: "a wrong first step", bad_last: "a wrong second step",
              no_steps: "an empty think block", q_bad: "a wrong step (problem 2)", sloppy: "a badly formatted one"}
    assert got == want, (f"expected only the two samples whose every step is valid, got "
                         f"{[labels.get(b, b) for _, b in got]}")


def _t_step_dedupe_cap(fn: Callable) -> None:
    """drops duplicates (same text up to surrounding whitespace) and keeps at most max_per_problem per problem"""
    p, q, good, good2 = _step_case()
    q_good = "<think>4*2=8,8+6=14</think><answer>(4*2)+6</answer>"
    bad = "<think>7*3=22,22+4=26</think><answer>(7*3)+5</answer>"
    samples = [[bad, good, " " + good + "\n", good2, good], [q_good, q_good]]
    got = [(a, b.strip()) for a, b in fn([p, q], samples, None)]
    assert got == [(p, good), (p, good2), (q, q_good)], f"duplicates should be kept once, got {len(got)} pairs: {got}"
    got1 = [(a, b.strip()) for a, b in fn([p, q], samples, 1)]
    assert got1 == [(p, good), (q, q_good)], (f"max_per_problem=1 should keep the first sample of each problem that passes "
                                              f"the filter (rejected ones do not count), got {got1}")


def _t_step_garbage(fn: Callable) -> None:
    """never raises on odd samples (None, numbers, unbalanced tags, huge strings) and keeps none of them"""
    p, q, _, _ = _step_case()
    junk = [None, 7, "", "<answer>", "<think></think><answer>((((</answer>", "<think>" * 500,
            "<answer>" + "9" * 3000 + "</answer>", "<think>" + "7*3=21," * 200 + "</think><answer>(7*3)+5</answer>"]
    try:
        got = list(fn([p, q], [junk, junk[::-1]], 2))
    except NotImplementedError:
        raise
    except Exception as e:  # noqa: BLE001
        raise AssertionError(f"raised {type(e).__name__} on odd samples") from None
    assert got == [], f"nothing here is a correct, step-valid solution, got {got}"


# ---------------------------------------------------------------- 03.3: GKD's generalised JSD
def _gjsd_reference(student_logits, teacher_logits, labels, beta: float):
    """Eq. (1) of GKD as TRL implements it, in float64: beta=0 forward KL(T||S), beta=1 reverse KL(S||T),
    else beta*KL(T||M) + (1-beta)*KL(S||M) with M = beta*T + (1-beta)*S; mean over positions with labels != -100."""
    import torch

    s = student_logits.double().log_softmax(-1)
    t = teacher_logits.double().log_softmax(-1)

    def kl(a, b):  # KL(a || b) of log-probabilities, per position
        return (a.exp() * (a - b)).sum(-1)

    if beta == 0:
        d = kl(t, s)
    elif beta == 1:
        d = kl(s, t)
    else:
        m = torch.logsumexp(torch.stack([t + torch.log(torch.tensor(beta, dtype=t.dtype)),
                                         s + torch.log1p(-torch.tensor(beta, dtype=t.dtype))]), 0)
        d = beta * kl(t, m) + (1 - beta) * kl(s, m)
    mask = labels != -100
    return d[mask].sum() / mask.sum().clamp(min=1)


def _jsd_case(seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    s = torch.randn(2, 5, 7, generator=g) * 2
    t = torch.randn(2, 5, 7, generator=g) * 2
    labels = torch.tensor([[3, 1, -100, 4, 0], [-100, -100, 2, 6, 5]])
    return s, t, labels


def _close(got, want, what: str) -> None:
    import torch

    assert torch.is_tensor(got) and got.dim() == 0, f"{what}: return a scalar tensor (a loss), got {type(got).__name__} {got!r}"
    # float32 logits of size ~2-6: two correct computations agree to ~1e-6 relative; 1e-4 leaves a wide margin
    # (plus 1e-6 absolute for a divergence that should be 0, where a relative error means nothing)
    assert abs(float(got) - float(want)) <= 1e-4 * abs(float(want)) + 1e-6, f"{what}: expected {float(want):.6f}, got {float(got):.6f}"


def _t_jsd_endpoints(fn: Callable) -> None:
    """beta=0 is the forward KL(teacher || student), beta=1 the reverse KL(student || teacher)"""
    s, t, y = _jsd_case(1)
    _close(fn(s, t, y, 0.0), _gjsd_reference(s, t, y, 0.0), "beta=0 (forward KL, the loss of section 2.4)")
    _close(fn(s, t, y, 1.0), _gjsd_reference(s, t, y, 1.0), "beta=1 (reverse KL)")


def _t_jsd_mixture(fn: Callable) -> None:
    """0 < beta < 1: beta*KL(T||M) + (1-beta)*KL(S||M) with the mixture M = beta*T + (1-beta)*S"""
    s, t, y = _jsd_case(2)
    for beta in (0.1, 0.5, 0.8):
        _close(fn(s, t, y, beta), _gjsd_reference(s, t, y, beta), f"beta={beta}")
    _close(fn(t, t, y, 0.3), _gjsd_reference(t, t, y, 0.3), "identical distributions (should be 0)")


def _t_jsd_mask(fn: Callable) -> None:
    """averages over the positions whose label is not -100 only, and back-propagates into the student's logits"""
    s, t, y = _jsd_case(3)
    s2 = s.clone()
    s2[y == -100] += 50 * _randn_like(s2[y == -100])  # change only masked positions: the loss must not move
    for beta in (0.0, 0.5):
        _close(fn(s2, t, y, beta), _gjsd_reference(s, t, y, beta), f"beta={beta} with the masked positions changed")
    leaf = s.clone().requires_grad_(True)
    loss = fn(leaf, t, y, 0.5)
    try:
        loss.backward()
    except Exception as e:  # noqa: BLE001
        raise AssertionError(f"the result cannot be back-propagated ({type(e).__name__}: {e}); keep it a torch tensor") from None
    assert leaf.grad is not None and float(leaf.grad[y == -100].abs().max()) == 0.0, "masked positions must get no gradient"
    assert float(leaf.grad[y != -100].abs().max()) > 0, "the student's logits at real positions should get a gradient"


def _randn_like(x):
    import torch

    return torch.randn(x.shape, generator=torch.Generator().manual_seed(7))


EXERCISES: dict[str, Exercise] = {
    "03.1": Exercise("the forgetting metric", [_t_forget_values, _t_forget_sign], "forgetting"),
    "03.2": Exercise("a rejection-sampling filter that checks every step", [_t_step_filter, _t_step_dedupe_cap, _t_step_garbage],
                     "step_filter"),
    "03.3": Exercise("GKD's generalised Jensen-Shannon divergence", [_t_jsd_endpoints, _t_jsd_mixture, _t_jsd_mask],
                     "generalized_jsd"),
}
