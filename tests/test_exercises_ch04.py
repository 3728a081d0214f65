"""Chapter 04's exercises: the reference solutions pass their graders, typical wrong answers and the stub fail."""
import math

import pytest
import torch

from utils.exercises import EXERCISES, grade
from utils.exercises.solutions import ch04


def _stub(*args):
    raise NotImplementedError


def test_reference_solutions_pass():
    assert grade("04.1", ch04.equal_scale_rank, verbose=False)
    assert grade("04.2", ch04.lora_trainable_params, verbose=False)
    assert grade("04.3", ch04.lora_state_bytes, verbose=False)
    assert grade("04.4", ch04.roundtrip_error, verbose=False)


@pytest.mark.parametrize("exercise", ["04.1", "04.2", "04.3", "04.4"])
def test_the_stub_fails(exercise, capsys):
    assert not grade(exercise, _stub)
    assert "not implemented yet" in capsys.readouterr().out


def test_wrong_answers_fail():
    # 04.1: the ratio without the square; its square root; the ratio upside down
    assert not grade("04.1", lambda a, b: a / b, verbose=False)
    assert not grade("04.1", lambda a, b: math.sqrt(a / b), verbose=False)
    assert not grade("04.1", lambda a, b: (b / a) ** 2, verbose=False)
    # 04.2: a full-rank r*in*out; counting only A
    assert not grade("04.2", lambda shapes, r: sum(r * o * i for o, i in shapes), verbose=False)
    assert not grade("04.2", lambda shapes, r: sum(r * i for o, i in shapes), verbose=False)
    # 04.3: values not bytes; forgetting Adam's moments; one moment only; SGD-like (value + gradient)
    count = ch04.lora_trainable_params
    assert not grade("04.3", lambda s, r, b=4: 4 * count(s, r), verbose=False)
    assert not grade("04.3", lambda s, r, b=4: 2 * b * count(s, r), verbose=False)
    assert not grade("04.3", lambda s, r, b=4: 3 * b * count(s, r), verbose=False)
    assert not grade("04.3", lambda s, r, b=4: 4 * b * sum(r * o * i for o, i in s), verbose=False)


def _fp32_roundtrip(W, d, dtype):  # merged in fp32: no rounding at all
    return float(((W + d) - d - W).abs().max())


def _vs_fp32_w(W, d, dtype):  # compares with the fp32 W: counts the initial cast as "unmerge error"
    w, dd = W.to(dtype), d.to(dtype)
    return float((((w + dd) - dd).float() - W).abs().max())


def _always_half(W, d, dtype):  # ignores the dtype argument
    return ch04.roundtrip_error(W, d, torch.float16)


def _in_place(W, d, dtype):  # right number, but modifies W
    W.copy_(W.to(dtype).float())
    return ch04.roundtrip_error(W, d, dtype)


def test_wrong_roundtrips_fail():
    for wrong in (_fp32_roundtrip, _vs_fp32_w, _always_half, _in_place):
        assert not grade("04.4", wrong, verbose=False), wrong.__name__


def test_every_exercise_is_registered():
    assert {k for k in EXERCISES if k.startswith("04.")} == {"04.1", "04.2", "04.3", "04.4"}
