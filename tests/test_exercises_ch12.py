"""Chapter 12's exercises: the reference solutions pass their graders, typical wrong answers and the stub fail."""
import re

import pytest

from utils.exercises import grade
from utils.exercises.solutions import ch12
from utils.world import parse_completion, split_steps


def _stub(*args):
    raise NotImplementedError  # the notebook's untouched exercise cell


def test_reference_solutions_pass():
    assert grade("12.1", ch12.signal_share, verbose=False)
    assert grade("12.2", ch12.readability, verbose=False)
    assert grade("12.3", ch12.stage_gains, verbose=False)


@pytest.mark.parametrize("exercise", ["12.1", "12.2", "12.3"])
def test_the_untouched_stub_fails(exercise, capsys):
    assert not grade(exercise, _stub)
    assert "not implemented yet" in capsys.readouterr().out


def test_typical_wrong_answers_fail():
    # 12.1: per sample instead of per prompt; a non-zero mean counted as signal; every G-th row as a group
    assert not grade("12.1", lambda r, G: float((r != r[0]).float().mean()), verbose=False)
    assert not grade("12.1", lambda r, G: float((r.reshape(-1, G).mean(1) > 0).float().mean()), verbose=False)
    assert not grade("12.1", lambda r, G: float((r.reshape(G, -1).T.std(1) > 0).float().mean()), verbose=False)
    # 12.2: a search instead of a full match; checking the arithmetic too; crashing on None
    one_op = re.compile(r"\d+[+\-*/]\d+=\d+")

    def searched(text):
        steps = split_steps(parse_completion(text).think)
        return sum(bool(one_op.search(s)) for s in steps) / len(steps) if steps else 0.0

    def checked(text):
        steps = split_steps(parse_completion(text).think)
        ok = [bool(one_op.fullmatch(s)) and eval(s.split("=")[0]) == int(s.split("=")[1]) for s in steps]
        return sum(ok) / len(ok) if ok else 0.0

    def fragile(text):
        think = re.search(r"<think>(.*)</think>", text).group(1)
        steps = [s for s in think.split(",") if s]
        return sum(bool(one_op.fullmatch(s)) for s in steps) / len(steps)

    assert not grade("12.2", searched, verbose=False)
    assert not grade("12.2", checked, verbose=False)
    assert not grade("12.2", fragile, verbose=False)
    # 12.3: against the first stage; alphabetical order; the first stage included with 0
    def vs_first(rows, skill):
        names = list(rows)
        return {b: rows[b][skill] - rows[names[0]][skill] for b in names[1:]}

    def alphabetical(rows, skill):
        names = sorted(rows)
        return {b: rows[b][skill] - rows[a][skill] for a, b in zip(names, names[1:])}

    def with_first(rows, skill):
        names = list(rows)
        return {names[0]: 0.0, **{b: rows[b][skill] - rows[a][skill] for a, b in zip(names, names[1:])}}

    for wrong in (vs_first, alphabetical, with_first):
        assert not grade("12.3", wrong, verbose=False)
