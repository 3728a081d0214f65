"""Run the course's notebooks with papermill and write ``build/report.md`` (``make course``).

    python -m utils.tools.run_course                 # every notebook, default profile
    python -m utils.tools.run_course --nb 03         # one notebook
    python -m utils.tools.run_course --nb 01-03 --profile cpu
    python -m utils.tools.run_course --nb 00,02 --profile gpu          # the GPU profile: time and GPU memory per notebook
    python -m utils.tools.run_course --profile gpu --dry-run           # gpu code path at smoke sizes (even without a GPU)
    python -m utils.tools.run_course --profile cpu --publish --nb 03   # refresh notebook 03's committed outputs

Executed copies go to ``build/notebooks/`` (the sources are never modified). Each notebook's
:class:`utils.report.Report` writes its metrics and self-checks to ``build/report/<name>.json``;
this script adds wall time and the outcome and renders the markdown report.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"


def select(spec: str | None) -> list[Path]:
    """Notebooks ``NN_*.ipynb`` in order; ``spec`` is ``NN``, ``NN-MM`` (inclusive), a comma list of those
    (``00,02-04``) or ``None`` (all)."""
    nbs = sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if not spec:
        return nbs
    chosen: list[Path] = []
    for part in spec.split(","):
        m = re.fullmatch(r"(\d{1,2})(?:-(\d{1,2}))?", part.strip())
        if not m:
            raise SystemExit(f"--nb takes numbers or ranges like 01-03 or 00,02-04, got {spec!r}")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        hits = [p for p in nbs if lo <= int(p.name[:2]) <= hi]
        if not hits:
            raise SystemExit(f"no notebook numbered {part}; have: {[p.name for p in nbs]}")
        chosen += [p for p in hits if p not in chosen]
    return sorted(chosen)


def render(rows: list[dict]) -> str:
    """The markdown report."""
    lines = ["# Course run report", "", f"Generated {time.strftime('%Y-%m-%d %H:%M:%S')} on {os.uname().nodename}.", "",
             "| notebook | profile | device | result | wall time | peak memory | self-checks |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        checks = r.get("checks", [])
        n_ok = sum(c["ok"] for c in checks)
        mem = "GPU, max allocated" if "CPU" not in r.get("device", "CPU") else "RSS"
        lines.append(f"| {r['notebook']} | {r.get('profile', '?')} | {r.get('device', '?')} | {r['result']} | {r['wall_seconds']:.0f} s | "
                     f"{r.get('peak_memory_mb', float('nan')):.0f} MiB ({mem}) | {n_ok}/{len(checks)} held |")
    total = sum(r["wall_seconds"] for r in rows)
    lines += ["", f"Total wall time: {total / 60:.1f} min.", ""]
    for r in rows:
        lines += [f"## {r['notebook']}", ""]
        if r.get("error"):
            lines += [f"**Failed**: `{r['error']}`", ""]
        if r.get("metrics"):
            lines += ["| metric | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in r["metrics"].items()] + [""]
        for c in r.get("checks", []):
            lines.append(f"- {'✅' if c['ok'] else '❌'} {c['check']}")
        lines.append("")
    return "\n".join(lines)


def _execute(src: Path, dst: Path, parameters: dict) -> str | None:
    """Run one notebook with papermill (in its own folder) into ``dst``; the first line of its error, or ``None``."""
    import papermill as pm

    try:
        pm.execute_notebook(str(src), str(dst), parameters=parameters, cwd=str(src.parent), kernel_name="python3",
                            progress_bar=False, log_output=False)
    except Exception as e:  # papermill raises PapermillExecutionError with the cell's error
        return (getattr(e, "ename", type(e).__name__) + ": " + str(getattr(e, "evalue", e))).splitlines()[0][:300]
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nb", help="a notebook number or range, e.g. 03 or 01-03")
    ap.add_argument("--profile", choices=["smoke", "cpu", "gpu"], help="force a profile (default: the notebooks' own)")
    ap.add_argument("--out", type=Path, default=ROOT / "build")
    ap.add_argument("--dry-run", action="store_true", help="with --profile gpu: the gpu code path at smoke sizes (COURSE_DRY_RUN=1)")
    ap.add_argument("--publish", action="store_true",
                    help="with --profile cpu: write each successful run's outputs into notebooks/ (utils.tools.outputs)")
    args = ap.parse_args(argv)
    if args.publish and args.profile != "cpu":
        ap.error("--publish needs --profile cpu: the committed outputs are the cpu profile's")
    if args.dry_run:
        os.environ["COURSE_DRY_RUN"] = "1"

    out = args.out.resolve()
    out_nb, out_rep = out / "notebooks", out / "report"
    out_nb.mkdir(parents=True, exist_ok=True)
    out_rep.mkdir(parents=True, exist_ok=True)
    os.environ["COURSE_REPORT_DIR"] = str(out_rep)
    if args.profile:
        os.environ["COURSE_PROFILE"] = args.profile
    rows = []
    for nb in select(args.nb):
        name = nb.stem
        (out_rep / f"{name}.json").unlink(missing_ok=True)
        print(f"=== {name}", flush=True)
        t0 = time.perf_counter()
        error = _execute(nb, out_nb / nb.name, {"PROFILE": args.profile} if args.profile else {})
        wall = time.perf_counter() - t0
        rep_file = out_rep / f"{name}.json"
        row = json.loads(rep_file.read_text()) if rep_file.exists() else {"notebook": name}
        row.update(notebook=name, wall_seconds=wall, result="ok" if error is None else "FAILED", error=error)
        rows.append(row)
        print(f"    {row['result']} in {wall:.0f} s" + (f": {error}" if error else ""), flush=True)
        if args.publish and error is None:
            from .outputs import publish

            publish(out_nb / nb.name, nb, "cpu", device=row.get("device", ""))
            print(f"    outputs published into {nb.relative_to(ROOT)}", flush=True)
            solution = NOTEBOOKS / "solutions" / nb.name
            if solution.exists():  # its solutions notebook: run in cpu too, and published with its outputs
                (out_nb / "solutions").mkdir(exist_ok=True)
                sol_error = _execute(solution, out_nb / "solutions" / nb.name, {"PROFILE": "cpu"})
                if sol_error is None:
                    publish(out_nb / "solutions" / nb.name, solution, "cpu", device=row.get("device", ""))
                    print(f"    solutions published into {solution.relative_to(ROOT)}", flush=True)
                else:  # reported in the row, like a chapter's failure
                    row.update(result="FAILED", error=f"solutions notebook: {sol_error}")
                    print(f"    solutions FAILED: {sol_error}", flush=True)
    report = out / "report.md"
    report.write_text(render(rows))
    print(f"report: {report}")
    return 0 if all(r["result"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
