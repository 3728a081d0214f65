"""Chapter 03's exercises: the reference solutions pass their graders, typical wrong answers and the stub fail."""
import pytest
import torch

from utils.exercises import grade
from utils.exercises.solutions import ch03


def _stub(*args, **kwargs):
    raise NotImplementedError  # the notebook's untouched exercise cell


@pytest.mark.parametrize("exercise", ["03.1", "03.2", "03.3"])
def test_the_untouched_stub_fails(exercise):
    assert not grade(exercise, _stub, verbose=False)


def test_03_1_forgetting():
    assert grade("03.1", ch03.forgetting, verbose=False)
    # all skills averaged (trained ones included); clipped at zero; after - before
    assert not grade("03.1", lambda b, a, tr: sum(b[s] - a[s] for s in b) / len(b), verbose=False)
    assert not grade("03.1", lambda b, a, tr: ch03.forgetting({s: max(b[s], a[s]) for s in b}, a, tr), verbose=False)
    assert not grade("03.1", lambda b, a, tr: -ch03.forgetting(b, a, tr), verbose=False)


def test_03_2_step_filter():
    from utils.sft import keep_correct
    from utils.world import countdown, parse_completion

    assert grade("03.2", ch03.step_filter, verbose=False)
    # the outcome-only filter of section 2.3 (keeps right answers reached through wrong steps)
    assert not grade("03.2", keep_correct, verbose=False)

    def steps_ok(p, t, rule):
        labels = countdown.step_labels(p, parse_completion(t).think)
        return rule(labels)

    def with_rule(rule):
        return lambda probs, samples, m=None: [
            (p, t) for p, t in keep_correct(probs, samples) if steps_ok(p, t, rule)][: m if m is None else m * len(probs)]

    # "no invalid step" forgets to ask for steps at all (an empty think block passes)
    assert not grade("03.2", with_rule(lambda ls: all(s.valid for s in ls)), verbose=False)
    # only the first step checked
    assert not grade("03.2", with_rule(lambda ls: bool(ls) and ls[0].valid), verbose=False)
    # any valid step instead of every step
    assert not grade("03.2", with_rule(lambda ls: any(s.valid for s in ls)), verbose=False)
    # right filter, no de-duplication
    no_dedupe = lambda probs, samples, m=None: [(p, t.strip()) for p, ts in zip(probs, samples) for t in ts  # noqa: E731
                                                if ch03.step_filter([p], [[t]])]
    assert not grade("03.2", no_dedupe, verbose=False)


def test_03_3_generalized_jsd_is_trl_gkd_loss():
    from trl.experimental.gkd import GKDTrainer

    assert grade("03.3", ch03.generalized_jsd, verbose=False)
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(3, 6, 11, generator=g), torch.randn(3, 6, 11, generator=g)
    y = torch.randint(0, 11, (3, 6), generator=g)
    y[0, :2] = -100
    for beta in (0.0, 0.2, 0.5, 0.9, 1.0):
        ours = ch03.generalized_jsd(s, t, y, beta)
        trl = GKDTrainer.generalized_jsd_loss(s, t, labels=y, beta=beta)
        assert abs(float(ours) - float(trl)) <= 1e-5 * abs(float(trl)), (beta, float(ours), float(trl))


def test_03_3_wrong_answers_fail():
    sol = ch03.generalized_jsd

    def kl(a, b):
        return (a.exp() * (a - b)).sum(-1)

    def interp(s_logits, t_logits, y, beta):  # (1-beta) forward + beta reverse: right at the ends only
        s, t = s_logits.log_softmax(-1), t_logits.log_softmax(-1)
        m = y != -100
        return ((1 - beta) * kl(t, s) + beta * kl(s, t))[m].mean()

    def swapped_mixture(s_logits, t_logits, y, beta):  # M = (1-beta) T + beta S: right at beta = 0, 0.5, 1 only
        if beta in (0, 1):
            return sol(s_logits, t_logits, y, beta)
        s, t = s_logits.log_softmax(-1), t_logits.log_softmax(-1)
        mix = torch.logsumexp(torch.stack([t + torch.log1p(torch.tensor(-beta)), s + torch.log(torch.tensor(beta))]), 0)
        return (beta * kl(t, mix) + (1 - beta) * kl(s, mix))[y != -100].mean()

    def unmasked(s_logits, t_logits, y, beta):  # mean over every position, masked ones included
        return sol(s_logits, t_logits, torch.zeros_like(y), beta)

    def swapped_ends(s_logits, t_logits, y, beta):  # beta=0 as the reverse KL
        return sol(s_logits, t_logits, y, 1 - beta)

    def as_float(s_logits, t_logits, y, beta):  # a number, not a loss one can back-propagate
        return torch.tensor(float(sol(s_logits, t_logits, y, beta)))

    for wrong in (interp, swapped_mixture, unmasked, swapped_ends, as_float):
        assert not grade("03.3", wrong, verbose=False), wrong.__name__
