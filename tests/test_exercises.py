"""The exercise grader: reference solutions pass, wrong ones fail, unfinished ones don't crash."""
from utils import solutions
from utils.grader import grade


def test_reference_solutions_pass():
    assert grade("00.1", solutions.pass_at_k, verbose=False)
    assert grade("00.2", solutions.half_credit_reward, verbose=False)


def test_wrong_and_unfinished_solutions_fail(capsys):
    assert not grade("00.1", lambda n, c, k: c / n)  # the biased "fraction correct" estimate
    assert not grade("00.2", lambda p, t: 1.0 if "<answer>" in t else 0.0)  # crashes on None
    def todo(*a):
        raise NotImplementedError
    assert not grade("00.1", todo)
    out = capsys.readouterr().out
    assert "not implemented yet" in out and "0/3 tests passed" in out
