"""Chapter 00's exercises: the reference solutions pass their graders, typical wrong answers and the stub fail."""
from utils.exercises import grade
from utils.exercises.solutions import ch00


def test_reference_solutions_pass():
    assert grade("00.1", ch00.pass_at_k, verbose=False)
    assert grade("00.2", ch00.half_credit_reward, verbose=False)


def test_wrong_and_unfinished_solutions_fail(capsys):
    assert not grade("00.1", lambda n, c, k: c / n)  # the biased "fraction correct" estimate
    assert not grade("00.2", lambda p, t: 1.0 if "<answer>" in t else 0.0)  # crashes on None
    def todo(*a):
        raise NotImplementedError
    assert not grade("00.1", todo)
    out = capsys.readouterr().out
    assert "not implemented yet" in out and "0/3 tests passed" in out
