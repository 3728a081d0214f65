"""Strip a notebook's run state before commit: ``python -m utils.tools.nbclean notebooks/NN_name.ipynb``.

Removes what a run leaves that is not content: papermill's metadata and timings (markdown cells get them too),
cell execution metadata, and ipywidgets' state (hundreds of KB of progress-bar noise). Outputs stay: they are
the committed ``cpu`` run (:mod:`utils.tools.outputs`; refresh them with ``make outputs NB=NN``).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import nbformat


def strip_run_state(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop papermill metadata, execution timings and widget state (in place; returns ``nb``)."""
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)
    return nb


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("notebooks", nargs="+", type=Path)
    args = ap.parse_args(argv)
    for path in args.notebooks:
        nb = nbformat.read(str(path), as_version=4)
        nbformat.write(strip_run_state(nb), str(path))
        print(f"cleaned {path}")


if __name__ == "__main__":
    main()
