"""utils.tools.cell_memory: one row per code cell, the parameters cell gets PROFILE, a failing cell is named."""
import json

import pytest

from utils.tools.cell_memory import profile_cells, to_markdown


def _nb(path, *sources, tags=None):
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# title"]}]
    for i, src in enumerate(sources):
        meta = {"tags": ["parameters"]} if tags == i else {}
        cells.append({"cell_type": "code", "metadata": meta, "source": [src], "outputs": [], "execution_count": None})
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_rows_per_code_cell_and_profile_injected(tmp_path):
    nb = _nb(tmp_path / "a.ipynb", "PROFILE = None", "import torch\nx = torch.zeros(1000, 1000)", "assert PROFILE == 'smoke'", tags=0)
    rows = profile_cells(nb, "smoke")
    assert [r["cell"] for r in rows] == [1, 2, 3]
    assert all(r["seconds"] >= 0 and r["peak_mib"] >= 0 for r in rows)
    table = to_markdown(rows, top=2)
    assert table.count("\n") == 3 and "peak MiB" in table


def test_failing_cell_is_named(tmp_path):
    nb = _nb(tmp_path / "b.ipynb", "y = 1", "raise ValueError('boom')", "z = 2")
    with pytest.raises(RuntimeError, match="cell 2 failed") as e:
        profile_cells(nb, "smoke")
    assert [r["cell"] for r in e.value.rows] == [1, 2]
