"""Every notebook follows the course template (the notebooks themselves run under nbval, smoke profile)."""
import json
import re
from pathlib import Path

import pytest

from utils.tools.outputs import problems
from utils.tools.run_course import select

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_template(path):
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    text = "\n".join("".join(c["source"]) for c in cells)
    params = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1 and "PROFILE = None" in "".join(params[0]["source"])
    assert "colab.research.google.com/github/" in "".join(cells[0]["source"])
    for needle in ["Learning goals", "§", "Exercise", "Summary", "Runtime"]:
        assert needle in text, f"{path.name} lacks {needle!r}"
    assert re.search(r"rep\.check\(", text), "self-checks on measured outcomes"
    meta = json.loads(path.read_text())["metadata"]
    assert "widgets" not in meta and "papermill" not in meta, "commit notebooks without run state (python -m utils.tools.nbclean)"
    assert not any("papermill" in c.get("metadata", {}) for c in cells), "cells keep papermill timings (python -m utils.tools.nbclean)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_outputs_are_current(path):
    """A reader sees the cpu run's results without running; the outputs belong to the code as it is now."""
    assert not problems(path), f"{path.name}: {'; '.join(problems(path))}"
    assert path.stat().st_size < 3 * 2**20, f"{path.name} is {path.stat().st_size / 2**20:.1f} MiB: shrink its figures"


def test_the_output_check_catches_stale_and_missing_outputs(tmp_path):
    import nbformat

    nb = nbformat.read(str(NOTEBOOKS[0]), as_version=4)
    nb.cells[-1] = nbformat.v4.new_code_cell("print('new code')") if nb.cells[-1].cell_type == "code" else nb.cells[-1]
    nb.cells.append(nbformat.v4.new_code_cell("x = 1"))
    stale = tmp_path / NOTEBOOKS[0].name
    nbformat.write(nb, str(stale))
    assert any("stale" in p for p in problems(stale))
    del nb.metadata["course"]
    nbformat.write(nb, str(stale))
    assert any("no committed outputs" in p for p in problems(stale))


def test_runner_selects_ranges():
    assert select(None) == NOTEBOOKS
    assert [p.name[:2] for p in select("00")] == ["00"]
    assert [p.name[:2] for p in select("04,00-01")] == ["00", "01", "04"]
    with pytest.raises(SystemExit):
        select("x")
