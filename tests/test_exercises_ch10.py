"""Chapter 10's exercises: the reference solutions pass their graders, typical wrong answers and the stub fail."""
import pytest
import torch

from utils.exercises import grade
from utils.exercises.solutions import ch10


def _stub(*args):
    raise NotImplementedError  # the notebook's untouched exercise cell


def test_reference_solutions_pass():
    assert grade("10.1", ch10.group_advantages, verbose=False)
    assert grade("10.2", ch10.gspo_ratio, verbose=False)
    assert grade("10.3", ch10.process_advantages, verbose=False)


@pytest.mark.parametrize("exercise", ["10.1", "10.2", "10.3"])
def test_the_untouched_stub_fails(exercise, capsys):
    assert not grade(exercise, _stub)
    assert "not implemented yet" in capsys.readouterr().out


def test_the_library_version_passes_too():
    from utils.rl import grpo

    assert grade("10.1", lambda r, G: grpo.group_advantages(r, G, "group"), verbose=False)


def test_typical_wrong_answers_fail():
    # 10.1: population std; no eps (NaN on equal groups); batch normalisation; no std at all
    assert not grade("10.1", lambda r, G: ((g := r.view(-1, G)) - g.mean(1, keepdim=True)).div(g.std(1, unbiased=False, keepdim=True) + 1e-4).reshape(-1), verbose=False)
    assert not grade("10.1", lambda r, G: ((g := r.view(-1, G)) - g.mean(1, keepdim=True)).div(g.std(1, keepdim=True)).reshape(-1), verbose=False)
    assert not grade("10.1", lambda r, G: (r - r.mean()) / (r.std() + 1e-4), verbose=False)
    assert not grade("10.1", lambda r, G: ((g := r.view(-1, G)) - g.mean(1, keepdim=True)).reshape(-1), verbose=False)
    # 10.2: product of ratios; arithmetic mean of ratios; mean over the padded length; mask ignored
    assert not grade("10.2", lambda lp, old, m: torch.exp(((lp - old) * m).sum(-1)), verbose=False)
    assert not grade("10.2", lambda lp, old, m: ((lp - old).exp() * m).sum(-1) / m.sum(-1), verbose=False)
    assert not grade("10.2", lambda lp, old, m: torch.exp(((lp - old) * m).sum(-1) / m.shape[1]), verbose=False)
    assert not grade("10.2", lambda lp, old, m: torch.exp((lp - old).mean(-1)), verbose=False)
    # 10.3: normalised within each completion; no reward-to-go sum; the outcome (last step) only
    def per_completion(steps):
        out = []
        for rs in steps:
            t = torch.tensor(rs, dtype=torch.float64)
            out.append([] if not rs else ((t - t.mean()) / ((t.std() if len(rs) > 1 else 0.0) + 1e-4)).flip(0).cumsum(0).flip(0).tolist())
        return out

    def no_sum(steps):
        flat = torch.tensor([r for rs in steps for r in rs], dtype=torch.float64)
        return [((torch.tensor(rs, dtype=torch.float64) - flat.mean()) / (flat.std() + 1e-4)).tolist() for rs in steps]

    assert not grade("10.3", per_completion, verbose=False)
    assert not grade("10.3", no_sum, verbose=False)
    assert not grade("10.3", lambda steps: [[0.0] * len(rs) for rs in steps], verbose=False)
