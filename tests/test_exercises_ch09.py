"""Chapter 09's exercises: the reference solutions pass their graders, typical wrong answers and the stub fail."""
import pytest
import torch
import torch.nn.functional as F

from utils.exercises import grade
from utils.exercises.solutions import ch09


def _stub(*args):
    raise NotImplementedError  # the notebook's untouched exercise cell


def test_reference_solutions_pass():
    assert grade("09.1", ch09.dpo_loss, verbose=False)
    assert grade("09.2", ch09.orpo_loss, verbose=False)
    assert grade("09.3", ch09.plackett_luce_nll, verbose=False)


@pytest.mark.parametrize("exercise", ["09.1", "09.2", "09.3"])
def test_the_untouched_stub_fails(exercise, capsys):
    assert not grade(exercise, _stub)
    assert "not implemented yet" in capsys.readouterr().out


def test_the_library_versions_pass_too():
    from utils.prefs import losses

    assert grade("09.1", losses.dpo_loss, verbose=False)
    assert grade("09.2", losses.orpo_loss, verbose=False)
    from utils.reward_models import plackett_luce_loss
    assert grade("09.3", plackett_luce_loss, verbose=False)


def test_typical_wrong_answers_fail():
    # 09.1: the survey's sigma without -log; no beta; chosen/rejected swapped; the batch mean; logps without the reference
    assert not grade("09.1", lambda w, l, rw, rl, b: torch.sigmoid(b * ((w - rw) - (l - rl))), verbose=False)
    assert not grade("09.1", lambda w, l, rw, rl, b: -F.logsigmoid((w - rw) - (l - rl)), verbose=False)
    assert not grade("09.1", lambda w, l, rw, rl, b: -F.logsigmoid(b * ((l - rl) - (w - rw))), verbose=False)
    assert not grade("09.1", lambda w, l, rw, rl, b: ch09.dpo_loss(w, l, rw, rl, b).mean(), verbose=False)
    assert not grade("09.1", lambda w, l, rw, rl, b: -F.logsigmoid(b * (w - l)), verbose=False)
    # 09.2: log-prob ratio instead of odds; the survey's form; no NLL; unstable log(1 - exp(m))
    assert not grade("09.2", lambda n, mw, ml, lam: n - lam * F.logsigmoid(mw - ml), verbose=False)
    assert not grade("09.2", lambda n, mw, ml, lam: -(mw - torch.logaddexp(mw, ml)), verbose=False)
    assert not grade("09.2", lambda n, mw, ml, lam: ch09.orpo_loss(n, mw, ml, lam) - n, verbose=False)
    lo = lambda m: m - torch.log(1 - torch.exp(m))  # noqa: E731
    assert not grade("09.2", lambda n, mw, ml, lam: n - lam * F.logsigmoid(lo(mw) - lo(ml)), verbose=False)
    # 09.3: the survey's full denominator; summing over rows; forgetting the reversal (head sums)
    assert not grade("09.3", lambda s: -(s - torch.logsumexp(s, -1, keepdim=True)).sum(-1).mean(), verbose=False)
    assert not grade("09.3", lambda s: ch09.plackett_luce_nll(s) * s.shape[0], verbose=False)
    assert not grade("09.3", lambda s: -(s - torch.logcumsumexp(s, -1)).sum(-1).mean(), verbose=False)
