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

    from utils.tools.outputs import code_sha256

    nb = nbformat.read(str(NOTEBOOKS[0]), as_version=4)
    nb.metadata["course"] = {"outputs": "cpu", "code_sha256": code_sha256(nb)}  # as if just published
    nb.cells.append(nbformat.v4.new_code_cell("x = 1"))                          # then a code cell is added
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


SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("[0-9][0-9]_*.ipynb"))
DEV_LOG = re.compile(r"(?i)a first run|first gpu run|was set after|not re-run|the brief for|written from a run")


def _markdown(cells) -> str:
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_template_v2(path):
    """The mechanical parts of template v2 (CONTRIBUTING.md): header, concept figure, quiz, tiers, reading, solutions."""
    cells = json.loads(path.read_text())["cells"]
    header, md = "".join(cells[0]["source"]), _markdown(cells)
    for part in ["Learning goals", "Prerequisites", "Study time", "Compute", "§"]:
        assert part in header, f"{path.name}: the header lacks {part!r}"
    assert any(c["cell_type"] == "code" and "diagram(" in "".join(c["source"]) for c in cells), \
        f"{path.name}: no concept figure (utils.plotting.diagram)"
    quiz = re.search(r"(?ms)^#+ .*Quiz.*?(?=^## |\Z)", md)
    assert quiz and quiz.group(0).count("<details>") >= 3, f"{path.name}: a quiz of 3-5 questions with <details> answers"
    assert "★" in md and "★★" in md, f"{path.name}: exercises are not marked with tiers (★, ★★, ★★★)"
    reading = re.search(r"(?ms)^#+ Further reading.*", md)
    assert reading and len(set(re.findall(r"\b\d{4}\.\d{4,5}\b", reading.group(0)))) >= 2, \
        f"{path.name}: 'Further reading' needs the primary papers with arXiv ids"
    assert (ROOT / "notebooks" / "solutions" / path.name).exists(), f"{path.name}: no notebooks/solutions/{path.name}"
    assert not DEV_LOG.search(md), f"{path.name}: development-log wording in the text: {DEV_LOG.search(md).group(0)!r}"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solutions_notebooks_are_committed_with_current_outputs(path):
    cells = json.loads(path.read_text())["cells"]
    assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in cells)
    assert not problems(path, need_figure=False), f"{path.name}: {'; '.join(problems(path, need_figure=False))}"
