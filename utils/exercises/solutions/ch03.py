"""Reference solutions to chapter 03's exercises (spoilers!). The test-suite checks that each passes its grader."""
from __future__ import annotations

from ...world import parse_completion, score


def rft_filter(problems, samples, max_per_problem=None):
    """03.1: keep verified, well-formed samples once each, at most ``max_per_problem`` per problem."""
    kept = []
    for p, texts in zip(problems, samples):
        seen: set[str] = set()
        for t in texts:
            if max_per_problem is not None and len(seen) >= max_per_problem:
                break
            if not isinstance(t, str) or score(p, t) != 1.0 or not parse_completion(t).well_formed:
                continue
            if t.strip() not in seen:
                seen.add(t.strip())
                kept.append((p, t.strip()))
    return kept


def forgetting(before, after, trained):
    """03.2: mean of ``before[s] - after[s]`` over the skills ``s`` that were not trained."""
    held_out = [s for s in before if s not in set(trained)]
    return sum(before[s] - after[s] for s in held_out) / len(held_out)
