"""Chapter 01's exercises: the reference solutions pass their graders, typical wrong answers and the stub fail."""
import pytest

from utils.exercises import grade
from utils.exercises.solutions import ch01


def _stub(*args):
    raise NotImplementedError  # the notebook's untouched exercise cell


def test_reference_solutions_pass():
    assert grade("01.1", ch01.grpo_advantages, verbose=False)
    assert grade("01.2", ch01.optimal_constant_baseline, verbose=False)
    assert grade("01.3", ch01.token_level_loss, verbose=False)
    assert grade("01.6", ch01.signal_probability, verbose=False)


@pytest.mark.parametrize("exercise", ["01.1", "01.2", "01.3", "01.6"])
def test_the_untouched_stub_fails(exercise, capsys):
    assert not grade(exercise, _stub)
    assert "not implemented yet" in capsys.readouterr().out


def test_typical_wrong_answers_fail():
    import torch

    def grouped(r, G):
        return r.float().view(-1, G)

    # 01.1: the population std; no zero-variance guard (NaN); the batch's std; the group mean without the std
    assert not grade("01.1", lambda r, G: ((grouped(r, G) - grouped(r, G).mean(1, keepdim=True))
                                           / (grouped(r, G).std(1, unbiased=False, keepdim=True) + 1e-4)).reshape(-1), verbose=False)
    assert not grade("01.1", lambda r, G: ((grouped(r, G) - grouped(r, G).mean(1, keepdim=True))
                                           / grouped(r, G).std(1, keepdim=True)).reshape(-1), verbose=False)
    assert not grade("01.1", lambda r, G: ((grouped(r, G) - grouped(r, G).mean(1, keepdim=True)) / (r.float().std() + 1e-4)).reshape(-1),
                     verbose=False)
    assert not grade("01.1", lambda r, G: (grouped(r, G) - grouped(r, G).mean(1, keepdim=True)).reshape(-1), verbose=False)
    # 01.2: the mean reward; weights by the norm instead of the squared norm; the norm of the mean score vector
    assert not grade("01.2", lambda r, s: float(r.mean()), verbose=False)
    assert not grade("01.2", lambda r, s: float((r * s.norm(dim=-1)).sum() / s.norm(dim=-1).sum()), verbose=False)
    assert not grade("01.2", lambda r, s: float((r[:, None] * s).sum(0).norm() ** 2 / (s.sum(0).norm() ** 2)), verbose=False)
    # 01.3: GRPO's per-sequence mean; plain REINFORCE's sum per sequence; padding counted; advantage not detached
    assert not grade("01.3", lambda lp, m, a: -((a[:, None] * lp * m).sum(1) / m.sum(1)).mean(), verbose=False)
    assert not grade("01.3", lambda lp, m, a: -(a.detach()[:, None] * lp * m).sum() / lp.shape[0], verbose=False)
    assert not grade("01.3", lambda lp, m, a: -(a.detach()[:, None] * lp * m).sum() / m.numel(), verbose=False)
    assert not grade("01.3", lambda lp, m, a: -(a[:, None] * lp * m).sum() / m.sum(), verbose=False)
    # 01.6: only "all wrong" counts as no signal; the chance for two samples only
    assert not grade("01.6", lambda p, G: 1 - (1 - p) ** G, verbose=False)
    assert not grade("01.6", lambda p, G: 2 * p * (1 - p), verbose=False)
    assert torch.is_tensor(ch01.grpo_advantages(torch.zeros(4), 2))
