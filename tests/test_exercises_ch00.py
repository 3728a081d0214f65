"""Chapter 00's exercises: the reference solutions pass their graders, typical wrong answers and the stub fail."""
from math import comb

import numpy as np
import pytest

from utils import world
from utils.exercises import grade
from utils.exercises.solutions import ch00
from utils.lm.evaluation import majority_correct


def _todo(*a):
    raise NotImplementedError


def test_reference_solutions_pass():
    assert grade("00.1", ch00.pass_at_k, verbose=False)
    assert grade("00.2", ch00.half_credit_reward, verbose=False)
    assert grade("00.3", ch00.pass_at_k_with_se, verbose=False)
    assert grade("00.4", ch00.majority_vote_random_ties, verbose=False)


@pytest.mark.parametrize("exercise,n_tests", [("00.1", 3), ("00.2", 2), ("00.3", 3), ("00.4", 3)])
def test_the_untouched_stub_fails(exercise, n_tests, capsys):
    assert not grade(exercise, _todo)
    out = capsys.readouterr().out
    assert "not implemented yet" in out and f"0/{n_tests} tests passed" in out


def test_wrong_pass_at_k_fails():
    assert not grade("00.1", lambda n, c, k: c / n, verbose=False)  # "fraction correct", whatever k
    assert not grade("00.1", lambda n, c, k: 1 - (1 - c / n) ** k, verbose=False)  # the biased plug-in estimator
    assert not grade("00.1", lambda n, c, k: min(1.0, k * c / n), verbose=False)  # a union bound


def test_wrong_rewards_fail():
    assert not grade("00.2", lambda p, t: 1.0 if "<answer>" in t else 0.0, verbose=False)  # crashes on None
    assert not grade("00.2", lambda p, t: world.score(p, t), verbose=False)  # no half credit
    # half credit for any answer block, well-formed or not
    assert not grade("00.2", lambda p, t: 0.0 if world.parse_completion(t).answer is None
                     else (1.0 if world.score(p, t) else 0.5), verbose=False)


def _per_problem(correct, k):
    n = correct.shape[1]
    return np.array([1 - comb(n - int(c), k) / comb(n, k) for c in correct.sum(1)])


def test_wrong_standard_errors_fail():
    def ddof0(correct, k):  # the population std
        per = _per_problem(np.asarray(correct), k)
        return per.mean(), per.std() / np.sqrt(len(per))

    def pooled(correct, k):  # every sample treated as an independent Bernoulli draw
        a = np.asarray(correct)
        m = _per_problem(a, k).mean()
        return m, np.sqrt(m * (1 - m) / a.size)

    def no_sqrt(correct, k):  # the variance of the mean's numerator, not its standard error
        per = _per_problem(np.asarray(correct), k)
        return per.mean(), per.std(ddof=1) / len(per)

    def plugin(correct, k):  # right error bar, biased estimator
        a = np.asarray(correct)
        per = 1 - (1 - a.mean(1)) ** k
        return per.mean(), per.std(ddof=1) / np.sqrt(len(per))

    for wrong in (ddof0, pooled, no_sqrt, plugin):
        assert not grade("00.3", wrong, verbose=False), wrong.__name__


def test_wrong_votes_fail():
    assert not grade("00.4", majority_correct, verbose=False)  # the library's first-seen tie-break
    assert not grade("00.4", lambda a, c: float(np.mean(c)), verbose=False)  # the fraction correct

    def abstentions_vote(answers, correct):  # None counts as an answer
        return ch00.majority_vote_random_ties(["None" if a is None else a for a in answers], correct)

    def no_normalisation(answers, correct):  # " 7" and "7 " split their votes
        from collections import Counter

        votes = Counter(a for a in answers if a is not None and a.strip())
        if not votes:
            return 0.0
        best = max(votes.values())
        winners = [a for a, v in votes.items() if v == best]
        right = {a for a, c in zip(answers, correct) if c}
        return sum(w in right for w in winners) / len(winners)

    for wrong in (abstentions_vote, no_normalisation):
        assert not grade("00.4", wrong, verbose=False), wrong.__name__
