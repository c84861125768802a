"""The simulated phone's benchmark "app" (SIMULATION): the protocol's app side (protocol 2), on the host.

Runs the real ai_edge_litert interpreter on ``<dir>/model.tflite`` through the
same frame loop as ``devicekit bench --device host``, streams frames.csv as it
goes, then writes device.json and done.json (temporary name + rename), in
DEVICE_PROTOCOL.md's order. With ``--golden`` it first runs the model once on
``golden_input.bin`` and writes ``golden_result.json`` (the simulated iPhone runs
the pushed .mlpackage for it with devicekit's MIL reference interpreter: CoreML
itself needs iOS). A phone's GPU/NPU/NNAPI delegate runs here as the host's
XNNPACK, and device.json says so (accelerator "cpu" with a note), as a real
app reports a fallback. Faults: crash (exit without done.json), error
(done.json status error), hang (stop writing, never finish), slow frames.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from devicekit.device.loop import FRAMES_HEADER, LoopResult, device_json, done_json, golden_check, load_model, run_loop, runtime_version, write_done


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", type=Path, required=True)
    ap.add_argument("--model", type=Path, default=None, help="default: <dir>/model.tflite")
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--delegate", default="cpu")
    ap.add_argument("--model-name", default="Pixel 7")
    ap.add_argument("--manufacturer", default="Google")
    ap.add_argument("--soc", default="GS201")
    ap.add_argument("--thermal", type=int, default=0)
    ap.add_argument("--crash-after", type=int, default=None)
    ap.add_argument("--error-after", type=int, default=None)
    ap.add_argument("--hang-after", type=int, default=None)
    ap.add_argument("--slow-ms", type=float, default=0.0)
    ap.add_argument("--thermal-rise-s", type=float, default=None,
                    help="thermal status +1 every S seconds of running; each level adds 2 ms per frame (throttling)")
    ap.add_argument("--golden", action="store_true", help="protocol 2: golden_result.json before the frames")
    ap.add_argument("--golden-mlpackage", type=Path, default=None,
                    help="run the golden check on this .mlpackage (MIL reference interpreter) instead of the timed model")
    ap.add_argument("--os", default="android 14")
    ap.add_argument("--golden-drift", type=float, default=0.0,
                    help="fault: add this to every output in the golden check (a GPU path that drifts from the reference)")
    a = ap.parse_args(argv)
    d = a.dir
    # a phone's XNNPACK/GPU/NNAPI/NPU delegate runs here as the host's XNNPACK or plain CPU kernels
    host_delegate = "cpu" if a.delegate == "cpu" else "xnnpack"
    model_path = a.model or d / "model.tflite"
    preloaded, load_us = None, None
    if a.golden:
        try:
            if a.golden_mlpackage is not None:
                _golden_mlpackage(a.golden_mlpackage, d)
            else:
                t0 = time.perf_counter_ns()
                preloaded = load_model(model_path, a.threads, host_delegate)
                load_us = (time.perf_counter_ns() - t0) // 1000
                if a.golden_drift:
                    real = preloaded.outputs
                    preloaded.outputs = lambda: [y + a.golden_drift for y in real()]
                    golden_check(preloaded, d)
                    preloaded.outputs = real
                else:
                    golden_check(preloaded, d)
        except Exception as exc:  # noqa: BLE001 - reported like a real app: done.json status error
            res = LoopResult(status="error", error=f"golden check: {type(exc).__name__}: {exc}")
            (d / "frames.csv").write_text(FRAMES_HEADER + "\n")
            write_done(d, done_json(res))
            return 0
    fh = open(d / "frames.csv", "w", buffering=1)
    fh.write(FRAMES_HEADER + "\n")
    stop_at = next((n for n in (a.crash_after, a.error_after, a.hang_after) if n is not None), None)

    class _Stop(Exception):
        pass

    def on_row(row):
        fh.write(",".join(map(str, row)) + "\n")
        fh.flush()
        if stop_at is not None and row[0] + 1 >= stop_at:
            raise _Stop()
        if a.slow_ms:
            time.sleep(0)  # the delay itself is inside inference (frame_delay_s)

    t_launch = time.monotonic()

    def thermal_now() -> int:
        if not a.thermal_rise_s:
            return a.thermal
        return min(6, a.thermal + int((time.monotonic() - t_launch) / a.thermal_rise_s))

    delay = a.slow_ms / 1000.0
    if a.thermal_rise_s:
        def delay():  # noqa: F811 - a hotter simulated SoC runs slower
            return a.slow_ms / 1000.0 + 0.002 * (thermal_now() - a.thermal)
    try:
        res = run_loop(model_path, a.frames, a.warmup, a.threads, host_delegate, on_row=on_row,
                       frame_delay_s=delay, model=preloaded)
    except Exception as exc:  # noqa: BLE001 - a load failure is reported like a real app would
        res = LoopResult(status="error", error=f"{type(exc).__name__}: {exc}")
    fh.close()
    if load_us is not None:
        res.load_us = load_us
    if a.crash_after is not None:
        os._exit(134)  # SIGABRT-like: no device.json, no done.json
    if a.hang_after is not None:
        while True:
            time.sleep(1)
    if a.error_after is not None:
        res.status, res.error = "error", "simulated: delegate failed mid-run (fault app-error)"
    elif res.status != "ok" and res.error and "_Stop" in res.error:
        res.status, res.error = "ok", None
    facts = {"model": a.model_name, "manufacturer": a.manufacturer, "os": a.os, "soc": a.soc}
    dev = device_json(facts, res, host_delegate, a.threads, (a.thermal, thermal_now()), runtime=runtime_version(model_path))
    if a.delegate not in ("cpu", "xnnpack"):  # what a real app records when its accelerator falls back
        dev["accelerator_note"] = f"simulated phone: {a.delegate} was asked for; the host's XNNPACK (CPU) ran"
    tmp = d / ".device.json.tmp"
    tmp.write_text(json.dumps(dev))
    os.replace(tmp, d / "device.json")
    write_done(d, done_json(res))
    return 0


def _golden_mlpackage(pkg: Path, d: Path) -> None:
    """The simulated iPhone's golden check: the pushed .mlpackage on golden_input.bin (MIL reference interpreter)."""
    import json

    import numpy as np

    from devicekit.app.golden import landmark_errors, mil_input
    from devicekit.milref import run_mlpackage

    doc = json.loads((d / "golden.json").read_text())
    spec = doc["input"]
    x = np.frombuffer((d / "golden_input.bin").read_bytes(), spec["dtype"])
    outs = run_mlpackage(pkg, {spec["name"]: mil_input(x, spec["shape"])})
    res = landmark_errors(doc, [outs[o["name"]] for o in doc["outputs"]])
    tmp = d / ".golden_result.json.tmp"
    tmp.write_text(json.dumps(res))
    os.replace(tmp, d / "golden_result.json")


if __name__ == "__main__":
    sys.exit(main())
