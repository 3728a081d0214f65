"""Self-checks and headline metrics of a notebook, recorded for ``make course``'s report.

In a notebook::

    rep = Report("00_sandbox", P)
    rep.metric("tiny-sft countdown-3 greedy", acc)
    rep.check(acc > 0.3, "tiny-sft solves a third of 3-number Countdown")   # raises in cpu/gpu if false

``check`` raises ``AssertionError`` when the profile asserts outcomes (``cpu``, ``gpu``); in ``smoke``
it records the result and prints it, since smoke sizes are too small for outcomes to mean anything.
``COURSE_CHECKS=record`` records failures without raising in every profile (to see all outcomes of a long
run in one go; the report marks each failed check).
When ``COURSE_REPORT_DIR`` is set (the course runner sets it), every call also updates
``$COURSE_REPORT_DIR/<notebook>.json``.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from .runtime import Profile, peak_memory_mb


class Report:
    """Collects metrics and self-check results of one notebook run."""

    def __init__(self, notebook: str, profile: Profile) -> None:
        self.notebook = notebook
        self.profile = profile
        self.metrics: dict[str, Any] = {}
        self.checks: list[dict[str, Any]] = []
        self.t0 = time.perf_counter()
        self._write()

    def metric(self, name: str, value: Any) -> Any:
        """Record a headline number (floats are rounded to 4 digits in the report); returns ``value``."""
        self.metrics[name] = round(value, 4) if isinstance(value, float) else value
        self._write()
        return value

    def check(self, condition: Any, description: str) -> bool:
        """Record a self-check on a measured outcome; raise if it fails and the profile asserts outcomes."""
        ok = bool(condition)
        self.checks.append({"check": description, "ok": ok})
        self._write()
        mark = "PASS" if ok else ("FAIL" if self.profile.assert_outcomes else "not met (smoke: not asserted)")
        print(f"[{mark}] {description}")
        if not ok and self.profile.assert_outcomes and os.environ.get("COURSE_CHECKS") != "record":
            raise AssertionError(f"self-check failed: {description}")
        return ok

    def summary(self) -> dict[str, Any]:
        """Profile, elapsed seconds, peak memory, metrics and checks so far."""
        return {"notebook": self.notebook, "profile": self.profile.name + (" (dry run)" if self.profile.extra.get("dry_run") else ""),
                "device": self.profile.device_label(),
                "seconds": round(time.perf_counter() - self.t0, 1),
                "peak_memory_mb": round(peak_memory_mb(self.profile.device), 1),
                "metrics": self.metrics, "checks": self.checks}

    def _write(self) -> None:
        folder = os.environ.get("COURSE_REPORT_DIR")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            (Path(folder) / f"{self.notebook}.json").write_text(json.dumps(self.summary(), indent=1))
