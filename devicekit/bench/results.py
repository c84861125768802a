"""The protocol's result files: parse what an app wrote, write ``runs/<RUN>/``.

A run is complete only when done.json says ``ok`` and frames.csv has every
row it promises; anything else is kept, marked incomplete, with the reason.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..device.loop import FRAMES_HEADER, PROTOCOLS_READ, frames_csv
from ..errors import InputError
from ..fsutil import atomic_write_json, atomic_write_text
from .stats import summarize

SCHEMA = "devicekit.bench/1"


def new_run_id(label: str = "") -> str:
    label = re.sub(r"[^A-Za-z0-9_-]", "-", label)[:24].strip("-")
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return "-".join(p for p in (stamp, label, secrets.token_hex(2)) if p)


@dataclass
class AppResult:
    """What an app left in its run directory, parsed and checked against the protocol."""

    rows: np.ndarray
    device: dict | None = None
    done: dict | None = None
    problems: list[str] = field(default_factory=list)
    golden: dict | None = None  # golden_result.json (protocol 2), when the run asked for the golden check

    @property
    def complete(self) -> bool:
        return not self.problems


def parse_frames(text: str) -> tuple[np.ndarray, str | None]:
    """frames.csv text -> int64 [N,6]; stops at the first bad row and says which."""
    lines = text.splitlines()
    if lines and not text.endswith("\n"):
        lines = lines[:-1]  # a copy taken while the app was writing: the last line may be cut
    if not lines:
        return np.zeros((0, 6), np.int64), "frames.csv is empty"
    if lines[0].strip() != FRAMES_HEADER:
        return np.zeros((0, 6), np.int64), f"frames.csv header is {lines[0].strip()[:80]!r}, expected {FRAMES_HEADER!r}"
    rows, problem = [], None
    for k, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split(",")
        try:
            vals = [int(p) for p in parts]
            if len(vals) != 6:
                raise ValueError
        except ValueError:
            problem = f"frames.csv line {k} does not parse ({line[:60]!r})"
            break
        rows.append(vals)
    return (np.asarray(rows, np.int64).reshape(-1, 6), problem)


def read_app_dir(d: Path) -> AppResult:
    """Parse frames.csv, device.json, done.json in a local copy of an app's run directory."""
    d = Path(d)
    problems: list[str] = []
    fp = d / "frames.csv"
    if fp.exists():
        rows, bad = parse_frames(fp.read_text(encoding="utf-8", errors="replace"))
        if bad:
            problems.append(bad)
    else:
        rows = np.zeros((0, 6), np.int64)
    device = _read_json(d / "device.json", problems)
    done = _read_json(d / "done.json", problems)
    if done is None and (d / "done.json").exists() is False:
        problems.insert(0, "the app wrote no done.json (it crashed or did not finish)")
    elif done is not None:
        if done.get("status") != "ok":
            problems.insert(0, f"the app reported an error: {done.get('error') or 'no message'}")
        n = done.get("frames")
        if isinstance(n, int) and len(rows) < n:
            problems.append(f"frames.csv has {len(rows)} rows, done.json says {n}")
    if not fp.exists() and done is not None:
        problems.append("the app wrote no frames.csv")
    for name, obj in (("device.json", device), ("done.json", done)):
        if obj is not None and obj.get("protocol") not in PROTOCOLS_READ:
            problems.append(f"{name} says protocol {obj.get('protocol')!r}; devicekit reads protocol "
                            + " and ".join(map(str, PROTOCOLS_READ)))
    golden = _read_json(d / "golden_result.json", problems)
    return AppResult(rows, device, done, problems, golden)


def _read_json(p: Path, problems: list[str]) -> dict | None:
    if not p.exists():
        return None
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
        if not isinstance(obj, dict):
            raise ValueError("not an object")
        return obj
    except (ValueError, UnicodeDecodeError) as exc:
        problems.append(f"{p.name} does not parse ({exc})")
        return None


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    complete: bool
    error: str | None
    summary: dict

    def to_json(self) -> dict:
        return {"run": self.run_id, "dir": str(self.run_dir), "complete": self.complete,
                "error": self.error, "summary": self.summary}


def write_run(run_dir: Path, run_id: str, rows: np.ndarray, device: dict | None, meta: dict,
              error: str | None, golden: dict | None = None) -> RunResult:
    """frames.csv, device.json (golden_result.json), summary.json written atomically (frames first, summary last).

    ``golden``: the judged golden check (protocol 2), kept next to the latency in the summary."""
    run_dir = Path(run_dir)
    atomic_write_text(run_dir / "frames.csv", frames_csv(rows.tolist()))
    atomic_write_json(run_dir / "device.json", device or {})
    if golden is not None:
        atomic_write_json(run_dir / "golden_result.json", golden)
        meta = {**meta, "golden": golden}
    summary = {
        "schema": SCHEMA,
        "run": run_id,
        "complete": error is None,
        "error": error,
        **meta,
        "device": device or {},
        "stats": summarize(rows, device),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write_json(run_dir / "summary.json", summary)
    return RunResult(run_id, run_dir, error is None, error, summary)


def load_run(path: str | Path) -> dict:
    """A run directory (or its summary.json) -> summary dict with the frames attached as ``_rows``."""
    p = Path(path)
    if p.is_file() and p.name == "summary.json":
        p = p.parent
    sp = p / "summary.json"
    if not sp.exists():
        raise InputError(f"{path}: not a bench run (no summary.json)", hint="pass a runs/<RUN> directory from `devicekit bench`")
    try:
        summary = json.loads(sp.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(f"{sp}: does not parse ({exc})") from None
    if summary.get("schema") != SCHEMA:
        raise InputError(f"{sp}: unsupported schema {summary.get('schema')!r} (expected {SCHEMA})")
    fp = p / "frames.csv"
    rows, _ = parse_frames(fp.read_text(encoding="utf-8")) if fp.exists() else (np.zeros((0, 6), np.int64), None)
    if not summary.get("complete") and len(rows) != (summary.get("stats") or {}).get("frames"):
        # a run devicekit did not finish (killed): frames.csv was appended after the last periodic summary
        summary["stats"] = summarize(rows, summary.get("device") or None)
    summary["_rows"] = rows
    summary["_dir"] = str(p)
    return _compat(summary)


def _compat(summary: dict) -> dict:
    """A summary from before ``device_name`` held the device in ``target``: moved there, the manifest's keys None."""
    if "device_name" not in summary:
        summary["device_name"] = summary.pop("target", None)
        for key in ("target", "model", "precision", "runtime"):
            summary.setdefault(key, None)
    return summary
