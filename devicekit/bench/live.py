"""A run directory that is reportable while the run goes on: nothing measured is lost if devicekit dies.

``LiveRun.start()`` writes ``runs/<RUN>/frames.csv`` (the header) and a ``summary.json`` marked incomplete
before the first frame. Rows measured on the host are appended to frames.csv as they are made (``add``:
written and flushed, so a ``kill -9`` loses at most the row being written), and summary.json is rewritten
atomically (temporary file + rename) at most every ``every_s`` seconds with the statistics so far. For a
phone or a browser, ``refresh(local_dir)`` mirrors the partial frames.csv the runner copied from the device.
When the run ends, ``results.write_run`` replaces both files atomically with the final ones.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..device.loop import FRAMES_HEADER, frames_csv
from ..fsutil import atomic_write_json, atomic_write_text

INCOMPLETE = "incomplete: devicekit stopped before the run finished ({n} measured frames so far)"


class LiveRun:
    def __init__(self, run_dir: Path, run_id: str, meta: dict, every_s: float = 1.0):
        self.run_dir, self.run_id, self.meta, self.every_s = Path(run_dir), run_id, meta, every_s
        self.rows: list[tuple] = []
        self._fh = None
        self._last = 0.0

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.run_dir / "frames.csv", FRAMES_HEADER + "\n")
        self._summary()
        self._fh = open(self.run_dir / "frames.csv", "a", encoding="utf-8")

    def add(self, row: tuple) -> None:
        """One measured row (the host loop's ``on_row``): appended and flushed; the summary at intervals."""
        self.rows.append(row)
        if self._fh is not None:
            self._fh.write(",".join(map(str, row)) + "\n")
            self._fh.flush()
        if time.monotonic() - self._last >= self.every_s:
            self._summary()

    def refresh(self, local_dir: Path) -> None:
        """Mirror the partial frames.csv copied from a device (phone, browser) into the run directory."""
        from .results import parse_frames

        fp = Path(local_dir) / "frames.csv"
        if not fp.exists():
            return
        rows, _ = parse_frames(fp.read_text(encoding="utf-8", errors="replace"))
        if len(rows) <= len(self.rows):
            return
        self.rows = [tuple(r) for r in rows.tolist()]
        self.close()
        atomic_write_text(self.run_dir / "frames.csv", frames_csv(self.rows))
        self._fh = open(self.run_dir / "frames.csv", "a", encoding="utf-8")
        self._summary()

    def _summary(self) -> None:
        from .results import SCHEMA
        from .stats import summarize

        rows = np.asarray(self.rows, np.int64).reshape(-1, 6)
        n = len(rows)
        atomic_write_json(self.run_dir / "summary.json", {
            "schema": SCHEMA, "run": self.run_id, "complete": False, "error": INCOMPLETE.format(n=n), **self.meta,
            "device": {}, "stats": summarize(rows, None), "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        })
        self._last = time.monotonic()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
