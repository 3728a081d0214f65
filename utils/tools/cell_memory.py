"""Where a notebook spends its memory and time: run its code cells one by one and report each cell's peak.

    python -m utils.tools.cell_memory notebooks/05_reward_models.ipynb --profile gpu --top 8
    python -m utils.tools.cell_memory notebooks/05_reward_models.ipynb --profile smoke --out build/cell_memory.json

Each code cell runs in one IPython shell (magics and ``display`` work, as in Jupyter), with ``PROFILE`` set as
papermill would. After each cell it records the wall time and the peak memory *of that cell*: on CUDA
``torch.cuda.max_memory_allocated`` (reset before the cell, so the number is the cell's own high-water mark,
counting every tensor still alive from earlier cells), on CPU the growth of the process's peak RSS (0 once an
earlier cell reached a higher peak). ``make course`` reports one peak per notebook; this says which cell it is.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def profile_cells(notebook: Path, profile: str) -> list[dict[str, Any]]:
    """``[{cell, first_line, seconds, peak_mib}]`` for every code cell of ``notebook``, run in ``profile``.

    Raises ``RuntimeError`` naming the cell if one fails (the rows so far are in the exception's ``rows``)."""
    import matplotlib

    matplotlib.use("Agg")
    import torch
    from IPython.core.interactiveshell import InteractiveShell

    cells = json.loads(notebook.read_text())["cells"]
    cwd = os.getcwd()
    os.chdir(notebook.parent)  # as papermill runs it: relative paths resolve from the notebook's folder
    try:
        return _run(cells, profile, InteractiveShell.instance(), torch.cuda.is_available() and profile == "gpu")
    finally:
        os.chdir(cwd)


def _run(cells: list[dict[str, Any]], profile: str, shell: Any, cuda: bool) -> list[dict[str, Any]]:
    import torch

    rows: list[dict[str, Any]] = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"])
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            src += f"\nPROFILE = {profile!r}"
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        before, t0 = _rss_mib(), time.perf_counter()
        result = shell.run_cell(src, silent=True)
        if cuda:
            torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else max(0.0, _rss_mib() - before)
        rows.append({"cell": i, "first_line": src.strip().splitlines()[0][:80] if src.strip() else "",
                     "seconds": round(time.perf_counter() - t0, 2), "peak_mib": round(peak, 1)})
        if not result.success:
            err = RuntimeError(f"cell {i} failed: {result.error_in_exec or result.error_before_exec!r}")
            err.rows = rows  # type: ignore[attr-defined]
            raise err
    return rows


def to_markdown(rows: list[dict[str, Any]], top: int | None = None) -> str:
    """The rows as a table, the largest peaks first (all of them, or the ``top`` largest)."""
    order = sorted(rows, key=lambda r: -r["peak_mib"])[: top or len(rows)]
    lines = ["| cell | peak MiB | seconds | first line |", "|---|---|---|---|"]
    lines += [f"| {r['cell']} | {r['peak_mib']:.0f} | {r['seconds']:.1f} | `{r['first_line']}` |" for r in order]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebook", type=Path)
    ap.add_argument("--profile", default=os.environ.get("COURSE_PROFILE", "smoke"), choices=["smoke", "cpu", "gpu"])
    ap.add_argument("--top", type=int, default=None, help="print only the N cells with the largest peaks")
    ap.add_argument("--out", type=Path, default=None, help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    notebook = args.notebook.resolve()
    out = args.out.resolve() if args.out else None
    try:
        rows, failed = profile_cells(notebook, args.profile), None
    except RuntimeError as e:
        rows, failed = getattr(e, "rows", []), str(e)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"notebook": notebook.name, "profile": args.profile, "failed": failed, "cells": rows}, indent=1))
    print(to_markdown(rows, args.top))
    if failed:
        print(failed, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
