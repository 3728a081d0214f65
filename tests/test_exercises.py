"""Every exercise's grader: its reference solution passes, the notebook's untouched stub fails with "not implemented
yet", each typical wrong answer fails, and the course library's own version (where one exists) passes.

The exercises are found, not listed: ``utils.exercises.EXERCISES`` (every ``utils/exercises/chNN.py``), each naming
its reference solution in ``utils/exercises/solutions/chNN.py``, whose ``WRONG`` and ``ALSO_RIGHT`` hold the rest.
"""
import importlib
import math

import pytest
import torch

from utils.exercises import EXERCISES, chapter_modules, grade

IDS = sorted(EXERCISES)


def _solutions(exercise_id: str):
    return importlib.import_module(f"utils.exercises.solutions.ch{exercise_id.split('.')[0]}")


def _cases(table: str) -> list:
    """``(id, fn)`` for every function in the solutions modules' ``table`` (``WRONG`` or ``ALSO_RIGHT``)."""
    out = []
    for exercise_id in IDS:
        for i, fn in enumerate(getattr(_solutions(exercise_id), table, {}).get(exercise_id, [])):
            out.append(pytest.param(exercise_id, fn, id=f"{exercise_id}-{i}-{fn.__name__.strip('_<>')}"))
    return out


def _stub(*args, **kwargs):
    raise NotImplementedError  # the notebook's untouched exercise cell


@pytest.mark.parametrize("exercise_id", IDS)
def test_the_reference_solution_passes(exercise_id):
    assert grade(exercise_id, getattr(_solutions(exercise_id), EXERCISES[exercise_id].solution), verbose=False)


@pytest.mark.parametrize("exercise_id", IDS)
def test_the_untouched_stub_fails(exercise_id, capsys):
    assert not grade(exercise_id, _stub)
    out = capsys.readouterr().out
    assert "not implemented yet" in out and f"0/{len(EXERCISES[exercise_id].tests)} tests passed" in out


@pytest.mark.parametrize("exercise_id", IDS)
def test_every_exercise_lists_typical_wrong_answers(exercise_id):
    assert getattr(_solutions(exercise_id), "WRONG", {}).get(exercise_id), f"solutions.ch{exercise_id[:2]}.WRONG lacks {exercise_id}"


@pytest.mark.parametrize("exercise_id,wrong", _cases("WRONG"))
def test_a_typical_wrong_answer_fails(exercise_id, wrong):
    assert not grade(exercise_id, wrong, verbose=False)


@pytest.mark.parametrize("exercise_id,right", _cases("ALSO_RIGHT"))
def test_the_library_version_passes_too(exercise_id, right):
    assert grade(exercise_id, right, verbose=False)


def test_every_chapter_module_is_found():
    chapters = chapter_modules()
    assert list(chapters) == [f"{n:02d}" for n in range(len(chapters))], "chapters are numbered 00, 01, ... without gaps"
    assert set(EXERCISES) == {k for m in chapters.values() for k in m.EXERCISES}
    assert {k for k in EXERCISES if k.startswith("04.")} == {"04.1", "04.2", "04.3", "04.4"}
    assert all(k.startswith(f"{c}.") for c, m in chapters.items() for k in m.EXERCISES)


def test_solutions_tables_name_only_known_exercises():
    for chapter in chapter_modules():
        sol = importlib.import_module(f"utils.exercises.solutions.ch{chapter}")
        for table in ("WRONG", "ALSO_RIGHT"):
            assert set(getattr(sol, table, {})) <= set(EXERCISES), (chapter, table)


# ---------------------------------------------------------------- one-off checks of particular solutions
def test_01_1_returns_a_tensor():
    from utils.exercises.solutions import ch01

    assert torch.is_tensor(ch01.grpo_advantages(torch.zeros(4), 2))


def test_03_3_generalized_jsd_is_trl_gkd_loss():
    from trl.experimental.gkd import GKDTrainer

    from utils.exercises.solutions import ch03

    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(3, 6, 11, generator=g), torch.randn(3, 6, 11, generator=g)
    y = torch.randint(0, 11, (3, 6), generator=g)
    y[0, :2] = -100
    for beta in (0.0, 0.2, 0.5, 0.9, 1.0):
        ours = ch03.generalized_jsd(s, t, y, beta)
        trl = GKDTrainer.generalized_jsd_loss(s, t, labels=y, beta=beta)
        assert abs(float(ours) - float(trl)) <= 1e-5 * abs(float(trl)), (beta, float(ours), float(trl))


def test_11_3_soft_value_is_finite_at_a_tiny_beta():
    from utils.exercises.solutions import ch11

    assert math.isfinite(float(ch11.soft_value(torch.tensor([0.5, 0.5]), torch.tensor([1.0, 0.0]), 1e-4)))
