"""Prepare a notebook for commit: ``python -m utils.tools.nbclean notebooks/NN_name.ipynb``.

Executes it in the ``smoke`` profile, then keeps the outputs of cells whose first line is
``# NBVAL_CHECK_OUTPUT`` (``make test`` compares those with a fresh run) and strips every other output
and execution count. Use ``--no-run`` to only strip.
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import nbformat

MARK = "# NBVAL_CHECK_OUTPUT"


def strip(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Remove outputs except on marked cells; drop execution counts, papermill metadata and widget state.

    Marked cells that keep outputs get a small running execution count (1, 2, ...): nbval treats a cell
    with outputs but no execution count as an error ("Unrun reference cell has outputs").
    """
    kept = 0
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)  # timings: markdown cells get them too
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        cell.execution_count = None
        keep = cell.source.lstrip().startswith(MARK)
        if keep and cell.outputs:
            kept += 1
            cell.execution_count = kept
            for out in cell.outputs:
                if "execution_count" in out:
                    out["execution_count"] = kept
        elif not keep:
            cell.outputs = []
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)  # progress-bar widget state (ipywidgets): hundreds of KB of noise
    return nb


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("notebooks", nargs="+", type=Path)
    ap.add_argument("--no-run", action="store_true")
    args = ap.parse_args(argv)
    for path in args.notebooks:
        if args.no_run:
            nb = nbformat.read(str(path), as_version=4)
        else:
            import papermill as pm

            os.environ["COURSE_PROFILE"] = "smoke"
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / path.name
                pm.execute_notebook(str(path), str(out), cwd=str(path.parent), kernel_name="python3", progress_bar=False)
                nb = nbformat.read(str(out), as_version=4)
            # papermill adds an "injected-parameters" cell only when parameters are passed (we pass none)
        nbformat.write(strip(nb), str(path))
        print(f"cleaned {path}")


if __name__ == "__main__":
    main()
