"""Latency statistics of one run: a pure function from per-frame rows to numbers."""

from __future__ import annotations

import math

import numpy as np

JANK_BUDGETS_MS = (33.3, 16.7)
THROTTLE_RATIO = 1.15  # late-run median over early-run median above this: throttling
THROTTLE_MIN_MS = 0.5  # ... and at least this much slower (sub-ms noise is not throttling)


def _r(x: float, nd: int = 3) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


def windows(start_ns: np.ndarray, total_us: np.ndarray, count: int = 10) -> list[dict]:
    """Latency over time: the run split into ``count`` equal-frame windows (median, p90 each)."""
    n = len(total_us)
    if n == 0:
        return []
    count = max(1, min(count, n))
    t0 = int(start_ns[0])
    out = []
    for idx in np.array_split(np.arange(n), count):
        seg = total_us[idx] / 1000.0
        out.append(
            {
                "t_s": _r((int(start_ns[idx[0]]) - t0) / 1e9),
                "frames": int(len(idx)),
                "p50_ms": _r(np.median(seg)),
                "p90_ms": _r(np.percentile(seg, 90)),
            }
        )
    return out


def throttled(over: list[dict]) -> bool:
    """Sustained slow-down: the last 30 % of the run's windows vs the first 30 % (median of medians)."""
    if len(over) < 5:
        return False
    k = max(1, round(len(over) * 0.3))
    early = float(np.median([w["p50_ms"] for w in over[:k]]))
    late = float(np.median([w["p50_ms"] for w in over[-k:]]))
    return bool(early > 0 and late / early > THROTTLE_RATIO and late - early > THROTTLE_MIN_MS)


def summarize(rows: np.ndarray, device: dict | None = None) -> dict:
    """rows: int64 array [N, 6] of the frames.csv columns. Returns the summary's stats block."""
    device = device or {}
    n = int(rows.shape[0]) if rows.size else 0
    out: dict = {"frames": n}
    if n == 0:
        out.update({k: None for k in ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "mean_ms", "std_ms", "min_ms", "max_ms", "fps")})
        out["jank"] = {}
        out["stages_ms"] = {}
        out["over_time"] = []
        out["throttling"] = False
    else:
        total = rows[:, 5].astype(np.float64)
        ms = total / 1000.0
        p50, p90, p95, p99 = np.percentile(ms, [50, 90, 95, 99])
        span_ns = float(rows[-1, 1] - rows[0, 1]) + total[-1] * 1000.0
        out.update(
            {
                "p50_ms": _r(p50),
                "p90_ms": _r(p90),
                "p95_ms": _r(p95),
                "p99_ms": _r(p99),
                "mean_ms": _r(ms.mean()),
                "std_ms": _r(ms.std()),
                "min_ms": _r(ms.min()),
                "max_ms": _r(ms.max()),
                # frames per second of wall time between the first frame's start and the last frame's end
                "fps": _r(n / (span_ns / 1e9)) if span_ns > 0 else None,
                "jank": {f"{b}ms": {"frames": int((ms > b).sum()), "fraction": _r((ms > b).mean(), 4)} for b in JANK_BUDGETS_MS},
                "stages_ms": {name: _r(rows[:, col].mean() / 1000.0) for name, col in (("preprocess", 2), ("inference", 3), ("postprocess", 4))},
            }
        )
        over = windows(rows[:, 1], rows[:, 5])
        out["over_time"] = over
        out["throttling"] = throttled(over)
    ts, te = device.get("thermal_start"), device.get("thermal_end")
    out["thermal"] = {"start": ts, "end": te, "change": (te - ts) if isinstance(ts, int) and isinstance(te, int) else None}
    if isinstance(ts, int) and isinstance(te, int) and te >= 2 > ts:
        out["throttling"] = True  # thermal status reached MODERATE (2) or above during the run
    load = device.get("load_us")
    first = device.get("first_frame_us")
    out["load_ms"] = _r(load / 1000.0) if isinstance(load, (int, float)) else None
    out["first_frame_ms"] = _r(first / 1000.0) if isinstance(first, (int, float)) else None
    out["peak_rss_kb"] = device.get("peak_rss_kb")
    return out
