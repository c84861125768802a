"""A fleet run: one benchmark on many devices at once, each its own ``runs/<RUN>/``, one ``fleet.json`` over them.

Devices run in parallel, one thread per device (the work is waiting on adb sockets and the phones, not this
CPU; benchmarks/fleet_scale.md measures what a device costs the harness). A device that fails does not stop
the others: its error is recorded and the rest go on. ``runs/<FLEET>/fleet.json`` is written atomically when
the fleet starts and again as each device ends, so a fleet that dies half-way still says what ran where.
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import DevicekitError, GateFailed, Interrupted, UsageError
from ..fsutil import atomic_write_json
from .results import new_run_id
from .runner import BenchConfig, run_bench

SCHEMA = "devicekit.fleet/1"
FLEET_FILE = "fleet.json"


@dataclass(frozen=True)
class Target:
    """One device of the fleet: what ``--device`` it is run as, the label it is shown with, and a reason it
    cannot run at all (an attached phone that is unauthorized or offline: reported, never silently left out)."""

    device: str
    label: str
    refused: str | None = None


def discover_all(artifact: Path, transport: str | None = None) -> list[Target]:
    """``--device all``: every attached phone (the discovery `devicekit devices` uses) whose platform runs this
    artifact's format; attached but unusable phones come back with the reason they cannot run."""
    from ..device import list_devices
    from ..errors import DeviceError
    from ..registry import PLATFORMS

    found = list_devices(include_host=False, transport=transport)
    suffix = artifact.suffix.lower()
    out = []
    for d in found:
        if d.platform not in ("android", "ios") or d.state == "unavailable" or suffix not in PLATFORMS[d.platform].bench_suffixes:
            continue
        why = None if d.usable else f"{d.state}: {d.extra.get('error') or 'not usable'}"
        out.append(Target(d.id, d.name or d.model or d.id, why))
    if not out:
        tools = "; ".join(d.extra["error"] for d in found if d.state == "unavailable" and d.extra.get("error"))
        raise DeviceError(f"--device all: no attached phone runs {artifact.suffix} models"
                          + (f" ({tools})" if tools else ""), hint="`devicekit devices` lists what is attached")
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:20] or "device"


class FleetRun:
    """Runs ``cfg`` on every target in parallel; ``doc`` is fleet.json (kept current on disk)."""

    def __init__(self, cfg: BenchConfig, targets: list[Target], fleet_id: str | None = None, log=lambda msg: None):
        self.cfg, self.targets, self.log = cfg, targets, log
        self.fleet_id = fleet_id or new_run_id("fleet")
        if len(self.fleet_id) > 40:  # each device's run id is <fleet>-NN-<device>, at most 64 characters
            raise UsageError(f"--run-id of a fleet is at most 40 characters (its runs add -NN-<device>), got {len(self.fleet_id)}")
        self.dir = Path(cfg.runs_dir) / self.fleet_id
        self.cancel = threading.Event()
        self._lock = threading.Lock()
        self.doc = {
            "schema": SCHEMA, "fleet": self.fleet_id, "artifact": str(cfg.artifact), "complete": False,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "wall_s": None,
            "devices": [{"device": t.device, "label": t.label,
                         "run_id": f"{self.fleet_id}-{k + 1:02d}-{_slug(t.label)}"[:64],
                         "run_dir": None, "status": "refused" if t.refused else "pending",
                         "error": t.refused, "exit_code": 3 if t.refused else None, "start_s": None, "wall_s": None}
                        for k, t in enumerate(targets)],
        }

    def _save(self, entry: dict | None = None, **changes) -> None:
        """Apply ``changes`` to one device's entry and rewrite fleet.json, both under the lock (threads share doc)."""
        with self._lock:
            if entry is not None:
                entry.update(changes)
            atomic_write_json(self.dir / FLEET_FILE, self.doc)

    def _one(self, k: int) -> None:
        entry = self.doc["devices"][k]
        cfg = replace(self.cfg, device=entry["device"], run_id=entry["run_id"])
        t0 = time.monotonic()
        self._save(entry, status="running", start_s=round(t0 - self._t0, 3))  # seconds after the fleet started
        say = lambda msg: self.log(f"[{entry['label']}] {msg}")  # noqa: E731 - one line per device
        try:
            res = run_bench(cfg, log=say, cancel=self.cancel)
            end = {"status": "ok", "run_dir": str(res.run_dir)}
        except DevicekitError as exc:
            run_dir = Path(cfg.runs_dir) / cfg.run_id
            status = "golden-failed" if isinstance(exc, GateFailed) else "interrupted" if isinstance(exc, Interrupted) else "failed"
            end = {"status": status, "error": exc.one_line(), "exit_code": exc.exit_code,
                   "run_dir": str(run_dir) if (run_dir / "summary.json").exists() else None}
        except Exception as exc:  # noqa: BLE001 - one device's bug must not take the fleet down; reported as a line
            end = {"status": "failed", "error": f"internal error: {type(exc).__name__}: {exc}", "exit_code": 1}
        self._save(entry, **end, wall_s=round(time.monotonic() - t0, 3))
        say(f"{entry['status']}" + (f": {entry['error']}" if entry["error"] else ""))

    def run(self) -> dict:
        """Run every device; returns fleet.json's content. Ctrl-C stops every device's run (frames kept)."""
        t0 = self._t0 = time.monotonic()
        todo = [k for k, e in enumerate(self.doc["devices"]) if e["status"] == "pending"]
        self._save()
        pool = ThreadPoolExecutor(max_workers=max(1, len(todo)), thread_name_prefix="fleet")
        futures = [pool.submit(self._one, k) for k in todo]
        try:
            while not all(f.done() for f in futures):
                time.sleep(0.2)
        except KeyboardInterrupt:
            self.cancel.set()  # each run stops its app, keeps its frames and marks itself interrupted
            pool.shutdown(wait=True)
            raise Interrupted(f"interrupted; what each device measured is kept (fleet summary {self.dir / FLEET_FILE})")
        finally:
            pool.shutdown(wait=True)
            self.doc["wall_s"] = round(time.monotonic() - t0, 3)
            self.doc["complete"] = all(e["status"] == "ok" for e in self.doc["devices"])
            self._save()
        return self.doc


def failures(doc: dict) -> list[dict]:
    return [e for e in doc["devices"] if e["status"] != "ok"]


def exit_code(doc: dict) -> int:
    """0 when every device ran; else 130 if interrupted, else the worst: 3 (device) > 2 (input) > 1 (gate)."""
    codes = {e["exit_code"] or 1 for e in failures(doc)}
    if not codes:
        return 0
    return 130 if 130 in codes else max(codes)


def load_fleet(path: str | Path) -> dict | None:
    """``runs/<FLEET>/`` (or its fleet.json) -> fleet.json's content; None when it is not a fleet run."""
    import json

    p = Path(path)
    fp = p if p.name == FLEET_FILE else p / FLEET_FILE
    if not fp.is_file():
        return None
    try:
        doc = json.loads(fp.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        from ..errors import InputError

        raise InputError(f"{fp}: does not parse ({exc})") from None
    from ..device.base import RUN_RE

    def entry_ok(e) -> bool:  # the run directory is the fleet's sibling named run_id: never a path out of runs/
        return (isinstance(e, dict) and all(isinstance(e.get(k), str) for k in ("device", "label", "status", "run_id"))
                and bool(RUN_RE.match(e["run_id"])))

    if (not isinstance(doc, dict) or doc.get("schema") != SCHEMA or not isinstance(doc.get("fleet"), str)
            or not isinstance(doc.get("devices"), list) or not all(map(entry_ok, doc["devices"]))):
        from ..errors import InputError

        raise InputError(f"{fp}: not a devicekit fleet summary (expected schema {SCHEMA}: fleet, and devices with "
                         "device, label, status, run_id)")
    return doc
