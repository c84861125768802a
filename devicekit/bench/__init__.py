"""`devicekit bench`: per-frame latency on phones (adb, devicectl) and on the host.

``run_bench(BenchConfig(...))`` runs one benchmark and writes ``runs/<RUN>/``
(frames.csv, device.json, summary.json); see DEVICE_PROTOCOL.md for the app side.
"""

from ..web import device as _web_device  # noqa: F401  (registers the browser device kind bench drives)
from .results import RunResult, load_run
from .runner import BenchConfig, run_bench

__all__ = ["BenchConfig", "RunResult", "load_run", "run_bench"]
