"""Every notebook follows the course template (the notebooks themselves run under nbval, smoke profile)."""
import json
import re
from pathlib import Path

import pytest

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
    for c in cells:
        if c["cell_type"] == "code" and not "".join(c["source"]).lstrip().startswith("# NBVAL_CHECK_OUTPUT"):
            assert not c.get("outputs"), "commit notebooks without outputs (run python -m utils.tools.nbclean)"
    meta = json.loads(path.read_text())["metadata"]
    assert "widgets" not in meta and "papermill" not in meta, "commit notebooks without run state (python -m utils.tools.nbclean)"
    assert not any("papermill" in c.get("metadata", {}) for c in cells), "cells keep papermill timings (python -m utils.tools.nbclean)"


def test_runner_selects_ranges():
    assert select(None) == NOTEBOOKS
    assert [p.name[:2] for p in select("00")] == ["00"]
    assert [p.name[:2] for p in select("04,00-01")] == ["00", "01", "04"]
    with pytest.raises(SystemExit):
        select("x")
