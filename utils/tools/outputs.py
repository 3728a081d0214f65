"""Committed outputs: every notebook ships the outputs of a ``cpu`` run, so a reader sees the plots, tables and
printed results on GitHub, in JupyterLab or from the Colab badge before running anything.

    make outputs                 # run every notebook in cpu and write its outputs into notebooks/
    make outputs NB=03           # one notebook (python -m utils.tools.run_course --profile cpu --publish --nb 03)
    python -m utils.tools.outputs --check     # which notebooks' outputs are stale

:func:`publish` copies the outputs of an executed copy (``build/notebooks/NN_name.ipynb``) into the source
notebook, cleaned: no progress bars or warnings (stderr), no widget state, PNGs re-encoded with a 256-colour
palette where that is smaller. It records in the notebook's metadata the SHA-256 of its code cells
(:func:`code_sha256`) and the profile that produced the outputs; ``tests/test_notebooks_structure.py`` recomputes
the hash, so outputs can never silently belong to older code: change a code cell, and the test asks you to run
``make outputs NB=NN``. Markdown edits do not invalidate outputs.
"""
from __future__ import annotations

import argparse
import base64
import copy
import datetime as dt
import hashlib
import io
import sys
from pathlib import Path
from typing import Any

import nbformat

from .nbclean import strip_run_state

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
KEY = "course"  # notebook metadata key
DROP_MIME = ("application/vnd.jupyter.widget-view+json", "application/vnd.jupyter.widget-state+json")


def _is_injected(cell: Any) -> bool:
    return "injected-parameters" in cell.get("metadata", {}).get("tags", [])


def code_sha256(nb: Any) -> str:
    """SHA-256 of the notebook's code cells, in order (sources only; papermill's injected cell excluded)."""
    h = hashlib.sha256()
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and not _is_injected(cell):
            src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            h.update(src.rstrip().encode() + b"\n\x00")
    return h.hexdigest()


def _shrink_png(data: str) -> str:
    """Re-encode a base64 PNG with a 256-colour palette when that makes it at least 20% smaller."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        return data
    raw = base64.b64decode(data)
    img = Image.open(io.BytesIO(raw))
    if img.mode == "P":
        return data
    buf = io.BytesIO()
    img.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(buf, format="PNG", optimize=True)
    small = buf.getvalue()
    return base64.b64encode(small).decode() if len(small) < 0.8 * len(raw) else data


def clean_outputs(outputs: list[Any]) -> list[Any]:
    """Keep what a reader should see: results, tables, figures, errors. Drop stderr (progress bars, warnings)
    and widgets (with their text fallbacks); shrink PNGs."""
    kept = []
    for out in outputs:
        out = copy.deepcopy(out)
        if out.get("output_type") == "stream" and out.get("name") == "stderr":
            continue
        if "data" in out:
            if any(mime in out["data"] for mime in DROP_MIME):
                continue  # a widget (tqdm's progress bar); its text/plain fallback is a frozen "0%|   |"
            if "image/png" in out["data"]:
                png = out["data"]["image/png"]
                out["data"]["image/png"] = _shrink_png(png if isinstance(png, str) else "".join(png))
        out.get("metadata", {}).pop("papermill", None)
        kept.append(out)
    return kept


def publish(executed: Path, source: Path, profile: str = "cpu", device: str = "") -> int:
    """Write the outputs of ``executed`` (a run of ``source``) into ``source``; returns the number of code cells
    that got outputs. Raises ``ValueError`` when the two notebooks' code differs (a run of other code)."""
    run = nbformat.read(str(executed), as_version=4)
    nb = nbformat.read(str(source), as_version=4)
    if code_sha256(run) != code_sha256(nb):
        raise ValueError(f"{executed} is a run of other code than {source}: run it again (make outputs NB={source.name[:2]})")
    ran = [c for c in run.cells if not _is_injected(c)]
    if len(ran) != len(nb.cells):
        raise ValueError(f"{executed} has {len(ran)} cells, {source} has {len(nb.cells)}")
    count, filled = 0, 0
    for cell, done in zip(nb.cells, ran):
        if cell.cell_type != "code":
            continue
        cell.outputs = clean_outputs(done.get("outputs", []))
        count += 1
        cell.execution_count = count
        for out in cell.outputs:
            if "execution_count" in out:
                out["execution_count"] = count
        filled += bool(cell.outputs)
    strip_run_state(nb)
    nb.metadata[KEY] = {"outputs": profile, "code_sha256": code_sha256(nb), "executed": dt.date.today().isoformat(),
                        **({"device": device} if device else {})}
    nbformat.write(nb, str(source))
    return filled


def problems(path: Path, need_figure: bool = True) -> list[str]:
    """What is wrong with a notebook's committed outputs ([] when they are current); ``need_figure``: a chapter
    must show at least one figure (a solutions notebook need not)."""
    nb = nbformat.read(str(path), as_version=4)
    meta = nb.metadata.get(KEY, {})
    out = []
    if not meta.get("code_sha256"):
        out.append("no committed outputs (make outputs NB=%s)" % path.name[:2])
    elif meta["code_sha256"] != code_sha256(nb):
        out.append("outputs are stale: a code cell changed since they were produced (make outputs NB=%s)" % path.name[:2])
    if meta and meta.get("outputs") != "cpu":
        out.append(f"outputs come from the {meta.get('outputs')!r} profile, not cpu")
    code = [c for c in nb.cells if c.cell_type == "code"]
    if need_figure and code and not any("image/png" in o.get("data", {}) for c in code for o in c.get("outputs", [])):
        out.append("no figure in the outputs")
    for c in code:
        for o in c.get("outputs", []):
            if o.get("output_type") == "stream" and o.get("name") == "stderr":
                out.append("stderr (progress bars, warnings) in the outputs")
                break
            if any(m in o.get("data", {}) for m in DROP_MIME):
                out.append("widget state in the outputs")
                break
    return sorted(set(out))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="list notebooks whose outputs are missing or stale")
    ap.add_argument("--from", dest="src", type=Path, default=ROOT / "build" / "notebooks",
                    help="folder of executed copies to publish (default: build/notebooks)")
    ap.add_argument("notebooks", nargs="*", type=Path)
    args = ap.parse_args(argv)
    paths = args.notebooks or sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")) + sorted(NOTEBOOKS.glob("solutions/[0-9][0-9]_*.ipynb"))
    bad = 0
    for path in paths:
        if args.check:
            issues = problems(path, need_figure=path.parent.name != "solutions")
            bad += bool(issues)
            print(f"{path.name}: {'; '.join(issues) if issues else 'current'}")
        else:
            n = publish(args.src / path.resolve().relative_to(NOTEBOOKS), path)
            print(f"{path.name}: outputs of {n} code cells published")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
