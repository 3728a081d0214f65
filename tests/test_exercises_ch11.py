"""Chapter 11's exercises: the reference solutions pass their graders, typical wrong answers and the stub fail."""
import math

import pytest
import torch

from utils.exercises import grade
from utils.exercises.solutions import ch11


def _stub(*args):
    raise NotImplementedError  # the notebook's untouched exercise cell


def test_reference_solutions_pass():
    assert grade("11.1", ch11.soft_targets, verbose=False)
    assert grade("11.2", ch11.policy_loss, verbose=False)
    assert grade("11.3", ch11.soft_value, verbose=False)


@pytest.mark.parametrize("exercise", ["11.1", "11.2", "11.3"])
def test_the_untouched_stub_fails(exercise, capsys):
    assert not grade(exercise, _stub)
    assert "not implemented yet" in capsys.readouterr().out


def test_the_library_versions_pass_too():
    from utils.rl import oreo

    assert grade("11.1", oreo.soft_targets, verbose=False)
    assert grade("11.2", lambda v, r, lp, ref, m, beta: oreo.policy_loss(v, r, lp, ref, m, beta), verbose=False)


def test_typical_wrong_answers_fail():
    # 11.1: the sum from t + 1; no mask on the padding; a prefix sum; the sign of the KL term flipped
    def exclusive(r, lr, m, beta):
        return ch11.soft_targets(r, lr, m, beta) + beta * lr * m

    def unmasked(r, lr, m, beta):
        return r[:, None] - beta * lr.flip(-1).cumsum(-1).flip(-1)

    def prefix(r, lr, m, beta):
        return (r[:, None] - beta * (lr * m).cumsum(-1)) * m

    def flipped(r, lr, m, beta):
        return 2 * r[:, None] * m - ch11.soft_targets(r, lr, m, beta)
    for wrong in [exclusive, unmasked, prefix, flipped]:
        assert not grade("11.1", wrong, verbose=False), wrong.__name__
    # 11.2: the survey's printed residual; no detach of the later log-ratios; the value not detached; a token mean
    def survey(v, r, lp, ref, m, beta):
        resid = (v.detach() - r[:, None] + beta * (lp - ref)) * m
        return ((resid**2).sum(-1) / m.sum(-1)).mean()

    def no_detach(v, r, lp, ref, m, beta):
        rho = (lp - ref) * m
        resid = (v.detach() - r[:, None] + beta * rho.flip(-1).cumsum(-1).flip(-1)) * m
        return ((resid**2).sum(-1) / m.sum(-1)).mean()

    def value_trained(v, r, lp, ref, m, beta):
        rho = (lp - ref) * m
        later = rho.detach().flip(-1).cumsum(-1).flip(-1) - rho.detach()
        resid = (v - r[:, None] + beta * rho + beta * later) * m
        return ((resid**2).sum(-1) / m.sum(-1)).mean()

    def token_mean(v, r, lp, ref, m, beta):
        rho = (lp - ref) * m
        later = rho.detach().flip(-1).cumsum(-1).flip(-1) - rho.detach()
        resid = (v.detach() - r[:, None] + beta * rho + beta * later) * m
        return (resid**2).sum() / m.sum()
    for wrong in [survey, no_detach, value_trained, token_mean]:
        assert not grade("11.2", wrong, verbose=False), wrong.__name__
    # 11.3: the plain mean; the max; the naive exp that overflows
    assert not grade("11.3", lambda p, r, beta: (p * r).sum(), verbose=False)
    assert not grade("11.3", lambda p, r, beta: r.max(), verbose=False)
    assert not grade("11.3", lambda p, r, beta: beta * torch.log((p * torch.exp(r / beta)).sum()), verbose=False)
    assert math.isfinite(float(ch11.soft_value(torch.tensor([0.5, 0.5]), torch.tensor([1.0, 0.0]), 1e-4)))
