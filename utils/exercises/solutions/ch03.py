"""Reference solutions to chapter 03's exercises (spoilers!). The test-suite checks that each passes its grader."""
from __future__ import annotations

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
