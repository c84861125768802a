"""Shared helpers for benchmark scripts: machine description, latency loops, face data, plain onnx2tf, run records."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
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


def interleaved_latency(paths: list[Path], threads: int = 1, runs: int = 200, warmup: int = 20) -> dict[str, dict]:
    """Host latency of several .tflite files measured side by side: one loop, each run invokes every file once.

    Load drift on a shared machine hits every file alike, so ratios between
    them are fair even when absolute numbers move. Each file runs under
    XNNPACK (ai_edge_litert's default resolver); a file XNNPACK refuses runs on
    the builtin kernels and says so (``delegate: cpu``, ``delegate_error``).
    A file LiteRT cannot load at all gets ``error`` and no times.
    Returns ``{str(path): {median, p90, runs, threads, delegate[, delegate_error]}}``.
    """
    import numpy as np

    from devicekit.errors import DevicekitError
    from devicekit.runtime import TFLiteRunner

    out: dict[str, dict] = {}
    runners = []
    for p in paths:
        try:
            r = TFLiteRunner(p, threads=threads, fallback=True)
        except DevicekitError as exc:
            out[str(p)] = {"error": str(exc)[:300]}
            continue
        d = r.inputs[0]
        x = np.random.default_rng(0).uniform(-1, 1, tuple(d["shape"])).astype(np.float32)
        r.set_tensor(r.to_input(x) if d["dtype"] != np.float32 else x)
        runners.append((str(p), r))
        out[str(p)] = {"delegate": r.delegate, **({"delegate_error": r.delegate_error} if r.delegate_error else {})}
    for _ in range(warmup):
        for _, r in runners:
            r.invoke()
    times: dict[str, list[float]] = {k: [] for k, _ in runners}
    for _ in range(runs):
        for k, r in runners:
            t0 = time.perf_counter_ns()
            r.invoke()
            times[k].append((time.perf_counter_ns() - t0) / 1e6)
    for k, ts in times.items():
        ts.sort()
        out[k].update(median=statistics.median(ts), p90=ts[int(0.9 * (len(ts) - 1))], runs=runs, threads=threads)
    return out


def plain_onnx2tf(model, calib, work: Path, exe: Path | None = None, timeout: float | None = None,
                  extra_args: tuple[str, ...] = ()):
    """onnx2tf as a user runs it: -oiqt with the calibration images via -cind (its own sample needs internet).

    ``exe``: another onnx2tf install's command (default: this venv's); its folder goes first on PATH so the
    onnxsim it calls is its own. Returns ({fp32|fp16|int8: path}, seconds, the CompletedProcess).
    """
    import numpy as np

    from devicekit.converters.onnx_export import export_onnx
    from devicekit.converters.tflite import ONNX2TF_SAMPLE, _offline_env

    export_onnx(model, work / "model.onnx")
    np.save(work / ONNX2TF_SAMPLE, np.zeros((20, 128, 128, 3), np.float32))
    px01 = (calib.pixels / 255.0).astype(np.float32)  # NHWC 0-1, as -cind wants
    np.save(work / "calib.npy", px01)
    spec = model.spec
    mean = [m / 255.0 for m in spec.per_channel(spec.mean)]
    std = [s / 255.0 for s in spec.per_channel(spec.std)]
    exe = exe or Path(sys.executable).parent / "onnx2tf"
    cmd = [str(exe), "-i", "model.onnx", "-o", "out", "-n", "-oiqt",
           "-cind", "input", "calib.npy", json.dumps(mean), json.dumps(std), *extra_args]
    env = _offline_env()
    env["PATH"] = str(exe.parent) + os.pathsep + env["PATH"]
    t0 = time.perf_counter()
    r, peak = run_capped(cmd, work, env, timeout)
    secs = time.perf_counter() - t0
    if r is None:
        raise RuntimeError(f"onnx2tf stopped at {peak / 2**30:.1f} GiB resident after {secs:.0f} s "
                           f"(the cap that keeps this {machine_ram_gib():.0f} GiB machine alive)")
    out = {}
    for kind, suffix in (("fp32", "_float32.tflite"), ("fp16", "_float16.tflite"), ("int8", "_integer_quant.tflite")):
        p = work / "out" / f"model{suffix}"
        if p.exists():
            out[kind] = p
    if not out:
        raise RuntimeError(f"onnx2tf failed: {error_line(r.stdout)}")
    return out, secs, r


RSS_CAP = 0.6  # of physical RAM: a run above it is stopped and recorded, not left to the OOM killer


def machine_ram_gib() -> float:
    import psutil

    return psutil.virtual_memory().total / 2**30


def run_capped(cmd: list[str], cwd: Path, env: dict, timeout: float | None = None):
    """Run ``cmd``; (CompletedProcess, peak RSS) or (None, peak RSS) when it passed RSS_CAP and was stopped.

    Past ``timeout`` seconds it is stopped too: return code -9 and a last output line saying so.
    """
    import psutil

    cap = RSS_CAP * psutil.virtual_memory().total
    t0 = time.monotonic()
    with tempfile.TemporaryFile("w+") as out:
        p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        proc, peak = psutil.Process(p.pid), 0
        while p.poll() is None:
            if timeout is not None and time.monotonic() - t0 > timeout:
                for c in [*proc.children(recursive=True), proc]:
                    c.kill()
                p.wait()
                out.seek(0)
                return subprocess.CompletedProcess(cmd, -9, out.read() + f"\ntimed out after {timeout:.0f} s", ""), peak
            try:
                rss = sum(c.memory_info().rss for c in [proc, *proc.children(recursive=True)])
            except psutil.Error:
                rss = 0
            peak = max(peak, rss)
            if rss > cap:
                for c in [*proc.children(recursive=True), proc]:
                    c.kill()
                p.wait()
                return None, peak
            time.sleep(0.5)
        out.seek(0)
        return subprocess.CompletedProcess(cmd, p.returncode, out.read(), ""), peak


def run_record(cmd: str, seconds: float) -> dict:
    load = os.getloadavg()
    return {"cmd": cmd, "machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "minutes": round(seconds / 60, 1), "load": [round(v, 1) for v in load]}




def error_line(text: str, limit: int = 240) -> str:
    """The line of a tool's output that says why it failed: the first exception line of a (chained) traceback,
    with the last one when they differ; else the last line naming an error; else the last line."""
    import re

    lines = [re.sub(r"\x1b\[[0-9;]*m", "", ln).strip() for ln in re.split(r"[\r\n]+", text)]
    lines = [ln for ln in lines if ln]
    exc = [ln for ln in lines if re.match(r"^[\w.]*(Error|Exception|Exit)\b.*?: \S", ln)]
    if exc:
        line = exc[0] if exc[0] == exc[-1] else f"{exc[0]} (then {exc[-1]})"
        return line[:limit]
    pat = re.compile(r"error|exception|abort|invalid|not supported|unsupported|failed|killed|timed out|free\(\)", re.I)
    hits = [ln for ln in lines if pat.search(ln) and not ln.startswith(("File ", "^", "~"))]
    line = hits[-1] if hits else (lines[-1] if lines else "no output")
    return line[:limit]
