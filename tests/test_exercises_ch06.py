"""Chapter 06's exercises: the reference solutions pass their graders, typical wrong answers and the stub fail."""
import math
from collections import Counter

import pytest

from utils.exercises import grade
from utils.exercises.solutions import ch06
from utils.lm.evaluation import pass_at_k


def _stub(*args):
    raise NotImplementedError  # the notebook's untouched exercise cell


def test_reference_solutions_pass():
    assert grade("06.1", ch06.geometric_mean, verbose=False)
    assert grade("06.2", ch06.expected_best_of_n, verbose=False)
    assert grade("06.3", ch06.weighted_vote, verbose=False)


@pytest.mark.parametrize("exercise", ["06.1", "06.2", "06.3"])
def test_the_untouched_stub_fails(exercise, capsys):
    assert not grade(exercise, _stub)
    assert "not implemented yet" in capsys.readouterr().out


def test_typical_wrong_answers_fail():
    # 06.1: the plain product; the arithmetic mean; no guard for empty or zero steps
    assert not grade("06.1", lambda v: math.prod(v) if v else 0.0, verbose=False)
    assert not grade("06.1", lambda v: sum(v) / len(v) if v else 0.0, verbose=False)
    assert not grade("06.1", lambda v: math.exp(sum(math.log(p) for p in v) / len(v)), verbose=False)
    # 06.2: the top-scored sample's correctness; pass@n (any correct); drawing with replacement; no range check
    assert not grade("06.2", lambda s, c, n: c[max(range(len(s)), key=lambda i: s[i])], verbose=False)
    assert not grade("06.2", lambda s, c, n: pass_at_k(len(c), int(sum(c)), n), verbose=False)

    def with_replacement(s, c, n):
        order = sorted(range(len(s)), key=lambda i: -s[i])
        M = len(s)
        return sum(c[i] * (((M - j) / M) ** n - ((M - j - 1) / M) ** n) for j, i in enumerate(order))

    assert not grade("06.2", with_replacement, verbose=False)
    assert not grade("06.2", lambda s, c, n: ch06.expected_best_of_n(s, c, min(max(n, 1), len(s))), verbose=False)
    # 06.3: the plain majority; the top-scored sample's answer; None counted as an answer
    assert not grade("06.3", lambda a, s: Counter(x for x in a if x).most_common(1)[0][0] if any(a) else None, verbose=False)
    assert not grade("06.3", lambda a, s: a[max(range(len(a)), key=lambda i: s[i])], verbose=False)

    def none_votes(a, s):
        w = Counter()
        for x, y in zip(a, s):
            w[x] += y
        return max(w, key=w.get)

    assert not grade("06.3", none_votes, verbose=False)
