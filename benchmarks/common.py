"""Shared helpers for benchmark scripts: machine description, latency loop, face data location."""

from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def machine() -> str:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def face_dir() -> Path | None:
    """The unlabeled real faces gathered from packages by scripts/fetch_face_data.py (None if absent)."""
    from devicekit.face_data import face_data_dir

    base = face_data_dir(fetch=True)
    return base / "unlabeled" if base else None


def latency_ms(path: Path, threads: int, runs: int = 200, warmup: int = 20) -> dict:
    """Median / p90 latency of one invoke of a .tflite on the host (ai_edge_litert, XNNPACK)."""
    import numpy as np

    from devicekit.runtime import TFLiteRunner

    r = TFLiteRunner(path, threads=threads)
    shape = tuple(r.inputs[0]["shape"])
    r.set_input(np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32))
    for _ in range(warmup):
        r.invoke()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        r.invoke()
        times.append((time.perf_counter_ns() - t0) / 1e6)
    times.sort()
    return {"median": statistics.median(times), "p90": times[int(0.9 * (len(times) - 1))], "runs": runs,
            "xnnpack": r.xnnpack}
