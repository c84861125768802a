"""The benchmark frame loop, run in-process on the host.

The same loop backs ``devicekit bench --device host`` and the simulated phone in
``device_tests/`` (which runs it in a child process as its "app"). It follows
DEVICE_PROTOCOL.md: per measured frame, preprocess (camera frame -> model
input), inference (interpreter invoke), postprocess (outputs -> float), all
in microseconds on a monotonic clock; warm-up frames are not recorded.

Runtimes: ``.tflite`` on ai_edge_litert (threads, XNNPACK on/off), ``.onnx`` on
onnxruntime when it is installed. Needs only numpy and those runtimes.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import EnvironmentMissing, InputError, UsageError, first_line

FRAMES_HEADER = "frame,start_ns,preprocess_us,inference_us,postprocess_us,total_us"
PROTOCOL = 2  # DEVICE_PROTOCOL.md: what this side writes; results.py reads 1 and 2
PROTOCOLS_READ = (1, 2)
HOST_DELEGATES = ("cpu", "xnnpack")


@dataclass
class LoopResult:
    rows: list[tuple[int, int, int, int, int, int]] = field(default_factory=list)
    load_us: int = 0
    first_frame_us: int = 0
    status: str = "ok"
    error: str | None = None
    delegate: str | None = None  # what actually ran (XNNPACK may fall back to the builtin kernels)
    note: str | None = None


def _pixel_frames(h: int, w: int, c: int, count: int = 4, seed: int = 0) -> list[np.ndarray]:
    """A few synthetic camera frames (uint8 HWC) cycled through, so caches do not flatter the loop."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(h, w, c), dtype=np.uint8) for _ in range(count)]


class _Preprocess:
    """uint8 HWC pixels -> the model input tensor: (pixel - mean) / std, layout, quantisation."""

    def __init__(self, shape, dtype, quant, mean, std):
        shape = [int(s) for s in shape]
        if len(shape) != 4:
            raise InputError(f"the bench loop needs a 4-D image input, the model input is {shape}")
        self.nchw = shape[1] in (1, 3) and shape[3] not in (1, 3)
        n, a, b, cc = shape
        self.h, self.w, self.c = (b, cc, a) if self.nchw else (a, b, cc)
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        mean = np.asarray(mean if mean is not None else [127.5], np.float32)
        std = np.asarray(std if std is not None else [127.5], np.float32)
        self.mean = np.resize(mean, self.c).astype(np.float32)
        self.inv_std = (1.0 / np.resize(std, self.c)).astype(np.float32)
        self.scale, self.zp = (quant or (0.0, 0))
        self.out = np.empty(self.shape, self.dtype)

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        x = (pixels.astype(np.float32) - self.mean) * self.inv_std
        if self.nchw:
            x = x.transpose(2, 0, 1)
        if self.dtype.kind in "iu" and self.scale:
            info = np.iinfo(self.dtype)
            x = np.clip(np.rint(x / self.scale + self.zp), info.min, info.max)
        self.out[0] = x
        return self.out


class TFLiteModel:
    """The bench loop's view of devicekit.runtime.TFLiteRunner: raw tensors in, float outputs out.

    ``--delegate xnnpack`` that XNNPACK cannot take is an error that says so (a phone's default
    interpreter would not load the file either), never a silent run on the builtin kernels.
    """

    def __init__(self, path: Path, threads: int, delegate: str, mean=None, std=None):
        from ..runtime import TFLiteRunner

        if delegate not in HOST_DELEGATES:
            raise UsageError(f"--delegate {delegate} is not available on the host (use {' or '.join(HOST_DELEGATES)})")
        runner = TFLiteRunner(path, threads=threads, delegate=delegate)
        self.delegate, self.note = runner.delegate, None
        self.interp = runner.interp
        d = self.interp.get_input_details()[0]
        self.in_index = d["index"]
        self.pre = _Preprocess(d["shape"], d["dtype"], d["quantization"], mean, std)
        self.outs = [(o["index"], o["quantization"]) for o in self.interp.get_output_details()]

    def set_input(self, x: np.ndarray) -> None:
        self.interp.set_tensor(self.in_index, x)

    def invoke(self) -> None:
        self.interp.invoke()

    def outputs(self) -> list[np.ndarray]:
        res = []
        for idx, (scale, zp) in self.outs:
            y = self.interp.get_tensor(idx)
            res.append((y.astype(np.float32) - zp) * scale if scale else y.astype(np.float32, copy=False))
        return res


class OnnxModel:
    def __init__(self, path: Path, threads: int, delegate: str, mean=None, std=None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise EnvironmentMissing(
                "benchmarking a .onnx model on the host needs onnxruntime, which is not installed",
                hint="pip install onnxruntime, or bench the .tflite",
            ) from None
        if delegate != "cpu":
            raise UsageError(f"--delegate {delegate} is not available for .onnx on the host (use cpu)")
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        try:
            self.sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise InputError(f"{path.name}: onnxruntime cannot load it ({first_line(exc, None)})") from None
        i = self.sess.get_inputs()[0]
        shape = [s if isinstance(s, int) else 1 for s in i.shape]
        dtype = {"tensor(float)": np.float32, "tensor(uint8)": np.uint8, "tensor(int8)": np.int8}.get(i.type, np.float32)
        self.name = i.name
        self.pre = _Preprocess(shape, dtype, None, mean, std)
        self._x = None
        self._y: list = []

    def set_input(self, x: np.ndarray) -> None:
        self._x = x

    def invoke(self) -> None:
        self._y = self.sess.run(None, {self.name: self._x})

    def outputs(self) -> list[np.ndarray]:
        return [np.asarray(y, np.float32) for y in self._y]


def load_model(path: str | Path, threads: int = 1, delegate: str = "xnnpack", mean=None, std=None):
    path = Path(path)
    if not path.is_file():
        raise InputError(f"model file not found: {path}")
    kind = {".tflite": TFLiteModel, ".onnx": OnnxModel}.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"{path.name}: the host bench runs .tflite and .onnx models, not {path.suffix or 'this file'}")
    if threads < 1:
        raise UsageError("--threads must be at least 1")
    return kind(path, threads, delegate, mean, std)


def run_loop(
    model_path: str | Path,
    frames: int = 100,
    warmup: int = 10,
    threads: int = 1,
    delegate: str = "xnnpack",
    duration_s: float | None = None,
    mean=None,
    std=None,
    on_row: Callable[[tuple], None] | None = None,
    frame_delay_s: float | Callable[[], float] = 0.0,
    model=None,
) -> LoopResult:
    """Load, warm up, then time ``frames`` frames (or frames for ``duration_s`` seconds).

    ``on_row`` sees every measured row as it is made (the simulated app streams
    them to its frames.csv). ``frame_delay_s`` (seconds, or a function returning
    them) adds a sleep inside inference: the simulated phone's slow frames and
    thermal throttling. KeyboardInterrupt and errors
    after load leave the measured rows in the result with ``status="error"``.
    """
    res = LoopResult()
    clock = time.perf_counter_ns
    t0 = clock()
    if model is None:  # (a benchmark may pass an already loaded model to share one interpreter)
        model = load_model(model_path, threads, delegate, mean, std)
    res.load_us = (clock() - t0) // 1000
    res.delegate, res.note = getattr(model, "delegate", delegate), getattr(model, "note", None)
    pre, set_input, invoke, outputs = model.pre, model.set_input, model.invoke, model.outputs
    pix = _pixel_frames(pre.h, pre.w, pre.c)
    npix = len(pix)
    rows = res.rows
    try:
        for i in range(warmup):
            t = clock()
            set_input(pre(pix[i % npix]))
            invoke()
            outputs()
            if i == 0:
                res.first_frame_us = (clock() - t) // 1000
        limit = None if duration_s is None else clock() + int(duration_s * 1e9)
        i = 0
        while (i < frames) if limit is None else (clock() < limit):
            t_start = clock()
            x = pre(pix[i % npix])
            set_input(x)
            t_pre = clock()
            invoke()
            if frame_delay_s:
                time.sleep(frame_delay_s() if callable(frame_delay_s) else frame_delay_s)
            t_inf = clock()
            outputs()
            t_end = clock()
            row = (i, t_start, (t_pre - t_start) // 1000, (t_inf - t_pre) // 1000,
                   (t_end - t_inf) // 1000, (t_end - t_start) // 1000)
            rows.append(row)
            if on_row is not None:
                on_row(row)
            if warmup == 0 and i == 0:
                res.first_frame_us = row[5]
            i += 1
    except KeyboardInterrupt:
        res.status, res.error = "error", f"interrupted after {len(rows)} measured frames"
    except Exception as exc:  # noqa: BLE001 - the run is recorded as failed, frames kept
        res.status, res.error = "error", f"{type(exc).__name__}: {exc}"
    return res


def golden_check(model, run_dir: Path) -> dict:
    """Protocol 2's golden check on the host side of the loop: run ``model`` once on ``golden_input.bin`` and write
    ``golden_result.json`` (errors against ``golden.json``) into ``run_dir``, before any frame is measured."""
    from ..app.golden import landmark_errors

    run_dir = Path(run_dir)
    doc = json.loads((run_dir / "golden.json").read_text())
    data = (run_dir / "golden_input.bin").read_bytes()
    pre = model.pre
    expect = int(np.prod(pre.shape)) * pre.dtype.itemsize
    if len(data) != expect:
        raise InputError(f"golden_input.bin has {len(data)} bytes; the model input {list(pre.shape)} {pre.dtype} needs {expect}")
    model.set_input(np.frombuffer(data, pre.dtype).reshape(pre.shape).copy())
    model.invoke()
    res = landmark_errors(doc, model.outputs())
    tmp = run_dir / ".golden_result.json.tmp"
    tmp.write_text(json.dumps(res))
    os.replace(tmp, run_dir / "golden_result.json")
    return res


def frames_csv(rows) -> str:
    return FRAMES_HEADER + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)


def host_facts() -> dict:
    """model / manufacturer / os / soc of this machine for device.json."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"model": f"host ({platform.node() or 'localhost'})", "manufacturer": "host",
            "os": f"{platform.system().lower()} {platform.release()}", "soc": cpu}


def peak_rss_kb() -> int | None:
    try:
        import resource

        r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(r // 1024 if platform.system() == "Darwin" else r)
    except (ImportError, OSError):
        return None


def runtime_version(model_path: str | Path) -> str:
    """The inference runtime and its version as the host loop sees it (device.json ``runtime``, protocol 2)."""
    from importlib import metadata

    dist = "onnxruntime" if str(model_path).lower().endswith(".onnx") else "ai-edge-litert"
    try:
        version = metadata.version(dist)
    except metadata.PackageNotFoundError:
        version = "unknown"
    return f"{'onnxruntime' if dist == 'onnxruntime' else 'litert'} {version}"


def device_json(facts: dict, res: LoopResult, delegate: str, threads: int, thermal=(None, None),
                runtime: str | None = None, build_type: str = "release") -> dict:
    """device.json of DEVICE_PROTOCOL.md (protocol 2: runtime, build_type, accelerator after any fallback)."""
    extra = {"delegate_note": res.note} if res.note else {}
    ran = res.delegate or delegate
    accel = {"accelerator": "cpu"}  # XNNPACK and the builtin kernels both run on the CPU here
    if ran != delegate:
        accel["accelerator_note"] = f"{delegate} was asked for; {ran} ran" + (f" ({res.note})" if res.note else "")
    return {"protocol": PROTOCOL, **{k: facts.get(k) for k in ("model", "manufacturer", "os", "soc")},
            "delegate": ran, **extra, "threads": threads, "thermal_start": thermal[0], "thermal_end": thermal[1],
            "load_us": int(res.load_us), "first_frame_us": int(res.first_frame_us), "peak_rss_kb": peak_rss_kb(),
            "runtime": runtime or "unknown", "build_type": build_type, **accel}


def done_json(res: LoopResult) -> dict:
    return {"protocol": PROTOCOL, "status": res.status, "frames": len(res.rows), "error": res.error}


def write_done(dir_: Path, done: dict) -> None:
    """done.json last, through a temporary name and a rename (the protocol's order)."""
    tmp = dir_ / ".done.json.tmp"
    tmp.write_text(json.dumps(done))
    os.replace(tmp, dir_ / "done.json")
