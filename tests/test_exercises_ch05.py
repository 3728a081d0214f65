"""Chapter 05's exercises: the reference solutions pass their graders, typical wrong answers and the stub fail."""
import math

import pytest

from utils.exercises import grade
from utils.exercises.solutions import ch05


def _stub(*args):
    raise NotImplementedError  # the notebook's untouched exercise cell


def test_reference_solutions_pass():
    assert grade("05.1", ch05.flip_probability, verbose=False)
    assert grade("05.2", ch05.plackett_luce_nll, verbose=False)
    assert grade("05.3", ch05.center_per_prompt, verbose=False)


@pytest.mark.parametrize("exercise", ["05.1", "05.2", "05.3"])
def test_the_untouched_stub_fails(exercise, capsys):
    assert not grade(exercise, _stub)
    assert "not implemented yet" in capsys.readouterr().out


def test_typical_wrong_answers_fail():
    import torch

    # 05.1: the probability of the better one; tau multiplies; the textbook formula, which overflows at a tiny tau
    assert not grade("05.1", lambda d, t: 1 / (1 + math.exp(-d / t)), verbose=False)
    assert not grade("05.1", lambda d, t: 1 / (1 + math.exp(d * t)), verbose=False)
    assert not grade("05.1", lambda d, t: 1 / (1 + math.exp(d / t)), verbose=False)  # right formula, overflows at tau 1e-3

    # 05.2: a full softmax for every position; ignoring the order; the sum over all items without removal
    def full_softmax(s, order):
        return float(-sum(s[i] - torch.logsumexp(s, 0) for i in order))

    def ignore_order(s, order):
        tail = torch.logcumsumexp(s.double().flip(0), 0).flip(0)
        return float(-(s.double() - tail).sum())

    def reversed_tail(s, order):  # logsumexp over the items ranked *above* (a cumulative sum the wrong way)
        x = s.double()[list(order)]
        return float(-(x - torch.logcumsumexp(x, 0)).sum())

    for wrong in (full_softmax, ignore_order, reversed_tail):
        assert not grade("05.2", wrong, verbose=False)

    # 05.3: the batch mean; z-scoring per prompt; per-prompt mean assuming sorted, contiguous groups of 2
    assert not grade("05.3", lambda r, ids: r - r.mean(), verbose=False)

    def zscore(r, ids):
        out = r.clone()
        for i in ids.unique():
            m = ids == i
            out[m] = (r[m] - r[m].mean()) / (r[m].std() if m.sum() > 1 else 1.0)
        return out

    assert not grade("05.3", zscore, verbose=False)
    assert not grade("05.3", lambda r, ids: (r.view(-1, 2) - r.view(-1, 2).mean(1, keepdim=True)).reshape(-1), verbose=False)
