"""Profiles, the report's self-checks, and the course runner's report rendering."""
import json

import pytest
import torch

from utils import runtime
from utils.report import Report
from utils.run_course import render


def test_profiles_resolve(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    expected = "gpu" if torch.cuda.is_available() else "cpu"
    assert runtime.resolve_profile_name(None) == expected
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    assert runtime.get_profile().name == "smoke"
    assert runtime.get_profile("cpu").name == "cpu"  # an explicit name beats the variable
    with pytest.raises(ValueError, match="unknown profile"):
        runtime.get_profile("fast")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_gpu_profile_without_gpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
        runtime.get_profile("gpu")


def test_profile_sizes_grow_and_pick():
    s, c = runtime.get_profile("smoke"), runtime.get_profile("cpu")
    assert not s.assert_outcomes and c.assert_outcomes
    assert s.n_eval < c.n_eval and s.train_steps < c.train_steps and s.n_samples < c.n_samples
    assert c.pick(1, 2, 3) == 2 and c.with_(n_eval=7).n_eval == 7
    monkeypatch_threads = runtime.default_threads()
    assert monkeypatch_threads >= 1


def test_report_checks_raise_only_when_asserting(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_REPORT_DIR", str(tmp_path))
    rep = Report("99_test", runtime.get_profile("cpu"))
    rep.metric("acc", 0.123456)
    assert rep.check(True, "holds")
    with pytest.raises(AssertionError, match="self-check failed"):
        rep.check(False, "does not hold")
    data = json.loads((tmp_path / "99_test.json").read_text())
    assert data["metrics"]["acc"] == 0.1235 and [c["ok"] for c in data["checks"]] == [True, False]
    smoke = Report("98_test", runtime.get_profile("smoke"))
    assert smoke.check(False, "printed, not raised") is False
    md = render([dict(data, wall_seconds=3.0, result="ok", error=None)])
    assert "| 99_test | cpu | CPU, " in md and "| ok | 3 s |" in md and "1/2 held" in md


def test_gpu_dry_run_takes_smoke_sizes_and_gpu_choices(monkeypatch):
    from utils.runtime import get_profile
    monkeypatch.setenv("COURSE_DRY_RUN", "1")
    P = get_profile("gpu")
    assert P.name == "gpu" and P.model == "smollm2-135m" and not P.assert_outcomes
    assert P.pick(smoke=3, cpu=50, gpu=200) == 3 and P.pick(smoke=[1, 4], cpu=[1], gpu=[1, 2, 8]) == [1, 4]
    assert P.pick(smoke="tiny-base", cpu="tiny-base", gpu="smollm2-135m") == "smollm2-135m"
    assert P.pick(smoke=("addition", 5), cpu=("addition", 5), gpu=("addition", 4)) == ("addition", 4)
    assert P.pick(smoke=True, cpu=True, gpu=False) is False


def test_checks_can_be_recorded_instead_of_raised(monkeypatch, tmp_path):
    import json
    from utils.report import Report
    from utils.runtime import get_profile
    monkeypatch.setenv("COURSE_REPORT_DIR", str(tmp_path))
    rep = Report("xx", get_profile("cpu"))
    with pytest.raises(AssertionError):
        rep.check(False, "must hold")
    monkeypatch.setenv("COURSE_CHECKS", "record")
    assert rep.check(False, "recorded") is False
    data = json.loads((tmp_path / "xx.json").read_text())
    assert [c["ok"] for c in data["checks"]] == [False, False] and data["device"].startswith("CPU")
