"""Profiles, the report's self-checks, and the course runner's report rendering."""
import json

import pytest
import torch

from utils import runtime
from utils.report import Report
from utils.tools.run_course import render


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


@pytest.mark.parametrize("capability,want", [((7, 5), torch.float16), ((7, 0), torch.float16), ((6, 1), torch.float16),
                                             ((8, 0), torch.bfloat16), ((8, 6), torch.bfloat16), ((9, 0), torch.bfloat16)])
def test_gpu_dtype_wants_native_bf16(capability, want):
    """A T4 (7.5) says is_bf16_supported() == True by emulation; the course must still choose fp16 there."""
    assert runtime.gpu_dtype(capability) == want


@pytest.mark.parametrize("capability,want", [((7, 5), torch.float16), ((8, 0), torch.bfloat16)])
def test_gpu_profile_takes_the_native_dtype(monkeypatch, capability, want):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # what a T4 answers
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: capability)
    monkeypatch.delenv("COURSE_DRY_RUN", raising=False)
    assert runtime.get_profile("gpu").dtype == want
    monkeypatch.setenv("COURSE_DRY_RUN", "1")
    assert runtime.get_profile("gpu").dtype == want


def test_grad_scaler_only_for_fp16_on_cuda():
    assert runtime.grad_scaler(torch.bfloat16) is None and runtime.grad_scaler(torch.float32) is None
    assert runtime.grad_scaler(torch.float16, "cpu") is None
    if torch.cuda.is_available():
        assert isinstance(runtime.grad_scaler(torch.float16), torch.amp.GradScaler)


def test_trainer_precision_flags_follow_the_dtype():
    from utils.sft import sft_config

    assert runtime.trainer_precision("cuda", torch.float16) == {"use_cpu": False, "bf16": False, "fp16": True}
    assert runtime.trainer_precision("cuda", torch.bfloat16) == {"use_cpu": False, "bf16": True, "fp16": False}
    assert runtime.trainer_precision("cpu", torch.bfloat16) == {"use_cpu": True, "bf16": False, "fp16": False}
    cpu = sft_config("cpu", torch.float32, max_steps=1)
    assert (cpu.fp16, cpu.bf16, cpu.use_cpu) == (False, False, True)


def test_rel_error():
    from utils.numerics import grads, rel_error

    a = torch.tensor([3.0, 4.0])
    assert rel_error(a, a) == 0.0 and rel_error(a * 1.01, a) == pytest.approx(0.01)
    # sequences are one long vector: diff norm 5, reference norm sqrt(9 + 16 + 25)
    assert rel_error([a, torch.tensor([0.0])], [a, torch.tensor([5.0])]) == pytest.approx(5 / 50**0.5)
    assert rel_error(torch.zeros(3), torch.zeros(3)) == 0.0 and rel_error(torch.ones(3), torch.zeros(3)) == float("inf")
    with pytest.raises(ValueError, match="shapes differ"):
        rel_error(torch.ones(3), torch.ones(4))
    lin = torch.nn.Linear(2, 1)
    lin(torch.ones(1, 2)).sum().backward()
    assert [g.shape for g in grads(lin)] == [torch.Size([1, 2]), torch.Size([1])]
