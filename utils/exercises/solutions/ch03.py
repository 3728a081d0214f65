"""Reference solutions to chapter 03's exercises (spoilers!). The test-suite checks that each passes its grader."""
from __future__ import annotations

from typing import Any, Callable

import torch

from ...world import countdown, parse_completion, score


def forgetting(before, after, trained):
    """03.1: mean of ``before[s] - after[s]`` over the skills ``s`` that were not trained."""
    held_out = [s for s in before if s not in set(trained)]
    return sum(before[s] - after[s] for s in held_out) / len(held_out)


def step_filter(problems, samples, max_per_problem=None):
    """03.2: keep verified, well-formed samples whose think block has steps, all of them valid
    (:func:`utils.world.countdown.step_labels`); each distinct text once, at most ``max_per_problem`` per problem."""
    kept = []
    for p, texts in zip(problems, samples):
        seen: set[str] = set()
        for t in texts:
            if max_per_problem is not None and len(seen) >= max_per_problem:
                break
            if not isinstance(t, str) or score(p, t) != 1.0:
                continue
            parsed = parse_completion(t)
            steps = countdown.step_labels(p, parsed.think)
            if not parsed.well_formed or not steps or not all(s.valid for s in steps):
                continue
            if t.strip() not in seen:
                seen.add(t.strip())
                kept.append((p, t.strip()))
    return kept


def generalized_jsd(student_logits, teacher_logits, labels, beta):
    """03.3: GKD's generalised JSD per position (TRL's ``generalized_jsd_loss``), averaged over labelled positions.

    ``beta=0``: KL(teacher || student); ``beta=1``: KL(student || teacher); otherwise
    ``beta KL(T || M) + (1 - beta) KL(S || M)`` with ``M = beta T + (1 - beta) S``.
    """
    s, t = student_logits.float().log_softmax(-1), teacher_logits.float().log_softmax(-1)

    def kl(a, b):  # KL(a || b) from log-probabilities, per position
        return (a.exp() * (a - b)).sum(-1)

    if beta == 0:
        d = kl(t, s)
    elif beta == 1:
        d = kl(s, t)
    else:
        b = torch.tensor(float(beta))
        m = torch.logsumexp(torch.stack([t + torch.log(b), s + torch.log1p(-b)]), 0)
        d = beta * kl(t, m) + (1 - beta) * kl(s, m)
    mask = labels != -100
    return d[mask].sum() / mask.sum().clamp(min=1)


# ---------------------------------------------------------------- typical wrong answers (each must fail its grader)
def _keep_correct(problems, samples, max_per_problem=None):  # the outcome-only filter of section 2.3
    from ...sft import keep_correct

    return keep_correct(problems, samples, max_per_problem)


def _with_step_rule(rule):
    """A filter that keeps right answers whose steps pass ``rule(labels)``, with ``keep_correct``'s dedupe and cap."""
    from ...sft import keep_correct

    def steps_ok(p, t):
        return rule(countdown.step_labels(p, parse_completion(t).think))

    def step_filter_by_rule(problems, samples, m=None):
        kept = [(p, t) for p, t in keep_correct(problems, samples) if steps_ok(p, t)]
        return kept[: m if m is None else m * len(problems)]
    return step_filter_by_rule


def _no_dedupe(problems, samples, m=None):  # right filter, no de-duplication
    return [(p, t.strip()) for p, ts in zip(problems, samples) for t in ts if step_filter([p], [[t]])]


def _kl(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.exp() * (a - b)).sum(-1)


def _jsd_interp(s_logits, t_logits, y, beta):  # (1-beta) forward + beta reverse: right at the ends only
    s, t = s_logits.log_softmax(-1), t_logits.log_softmax(-1)
    m = y != -100
    return ((1 - beta) * _kl(t, s) + beta * _kl(s, t))[m].mean()


def _jsd_swapped_mixture(s_logits, t_logits, y, beta):  # M = (1-beta) T + beta S: right at beta = 0, 0.5, 1 only
    if beta in (0, 1):
        return generalized_jsd(s_logits, t_logits, y, beta)
    s, t = s_logits.log_softmax(-1), t_logits.log_softmax(-1)
    mix = torch.logsumexp(torch.stack([t + torch.log1p(torch.tensor(-beta)), s + torch.log(torch.tensor(beta))]), 0)
    return (beta * _kl(t, mix) + (1 - beta) * _kl(s, mix))[y != -100].mean()


def _jsd_unmasked(s_logits, t_logits, y, beta):  # mean over every position, masked ones included
    return generalized_jsd(s_logits, t_logits, torch.zeros_like(y), beta)


def _jsd_swapped_ends(s_logits, t_logits, y, beta):  # beta=0 as the reverse KL
    return generalized_jsd(s_logits, t_logits, y, 1 - beta)


def _jsd_as_float(s_logits, t_logits, y, beta):  # a number, not a loss one can back-propagate
    return torch.tensor(float(generalized_jsd(s_logits, t_logits, y, beta)))


WRONG: dict[str, list[Callable[..., Any]]] = {
    # all skills averaged (trained ones included); clipped at zero; after - before
    "03.1": [
        lambda b, a, tr: sum(b[s] - a[s] for s in b) / len(b),
        lambda b, a, tr: forgetting({s: max(b[s], a[s]) for s in b}, a, tr),
        lambda b, a, tr: -forgetting(b, a, tr),
    ],
    "03.2": [
        _keep_correct,
        # "no invalid step" forgets to ask for steps at all (an empty think block passes)
        _with_step_rule(lambda ls: all(s.valid for s in ls)),
        _with_step_rule(lambda ls: bool(ls) and ls[0].valid),  # only the first step checked
        _with_step_rule(lambda ls: any(s.valid for s in ls)),  # any valid step instead of every step
        _no_dedupe,
    ],
    "03.3": [_jsd_interp, _jsd_swapped_mixture, _jsd_unmasked, _jsd_swapped_ends, _jsd_as_float],
}
