"""Chapter 07's exercises: the reference solutions pass their graders, typical wrong answers and the stub fail."""
import pytest
import torch

from utils.exercises import grade
from utils.exercises.solutions import ch07


def _stub(*args):
    raise NotImplementedError  # the notebook's untouched exercise cell


def test_reference_solutions_pass():
    assert grade("07.1", ch07.gae, verbose=False)
    assert grade("07.2", ch07.ppo_clipped_loss, verbose=False)
    assert grade("07.3", ch07.explained_variance, verbose=False)


@pytest.mark.parametrize("exercise", ["07.1", "07.2", "07.3"])
def test_the_untouched_stub_fails(exercise, capsys):
    assert not grade(exercise, _stub)
    assert "not implemented yet" in capsys.readouterr().out


def test_typical_wrong_answers_fail():
    # 07.1: lam ignored (Monte-Carlo advantage); bootstrapping from the padding's values; returning A + V
    assert not grade("07.1", lambda r, v, m, g, lam: ch07.gae(r, v, m, g, 1.0), verbose=False)

    def bootstraps_padding(r, v, m, gamma, lam):
        adv = torch.zeros_like(v)
        nxt = torch.zeros_like(v[:, 0])
        for t in reversed(range(v.shape[1])):
            nv = v[:, t + 1] if t + 1 < v.shape[1] else torch.zeros_like(nxt)
            nxt = (r[:, t] + gamma * nv - v[:, t] + gamma * lam * nxt) * m[:, t]
            adv[:, t] = nxt
        return adv

    assert not grade("07.1", bootstraps_padding, verbose=False)
    assert not grade("07.1", lambda r, v, m, g, lam: ch07.gae(r, v, m, g, lam) + v * m, verbose=False)
    # 07.2: max instead of min; the clipped term only; a per-sequence mean; the ratio against the log-probs' difference
    def clipped(lp, old, a, m, eps, how):
        ratio = (lp - old.detach()).exp()
        c = ratio.clamp(1 - eps, 1 + eps) * a
        obj = {"max": torch.maximum(ratio * a, c), "clip": c, "min": torch.minimum(ratio * a, c)}[how]
        return obj

    assert not grade("07.2", lambda lp, old, a, m, eps: -(clipped(lp, old, a, m, eps, "max") * m).sum() / m.sum(), verbose=False)
    assert not grade("07.2", lambda lp, old, a, m, eps: -(clipped(lp, old, a, m, eps, "clip") * m).sum() / m.sum(), verbose=False)
    assert not grade("07.2", lambda lp, old, a, m, eps: -((clipped(lp, old, a, m, eps, "min") * m).sum(-1) / m.sum(-1)).mean(),
                     verbose=False)
    assert not grade("07.2", lambda lp, old, a, m, eps: -(torch.minimum((lp - old) * a, (lp - old).clamp(-eps, eps) * a) * m).sum()
                     / m.sum(), verbose=False)
    # 07.3: the mask ignored; Var(V) / Var(R); the squared correlation
    assert not grade("07.3", lambda v, r, m: float(1 - (r - v).var() / r.var()), verbose=False)
    assert not grade("07.3", lambda v, r, m: float(v[m.bool()].var() / r[m.bool()].var()), verbose=False)
    assert not grade("07.3", lambda v, r, m: float(torch.corrcoef(torch.stack([v[m.bool()], r[m.bool()]]))[0, 1] ** 2),
                     verbose=False)
