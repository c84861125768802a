"""Run orchestration: install, push, launch, poll, pull, parse, write ``runs/<RUN>/``.

Whatever happens after launch (timeout, app error, crash, the device going
away, Ctrl-C), the frames that were measured are written, the run is marked
incomplete with the reason, and the error that reaches the CLI names the
fault and where the partial results are.
"""

from __future__ import annotations

import json
import math
import shlex
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import DeviceError, DevicekitError, GateFailed, InputError, Interrupted, UsageError
from ..fsutil import sha256_file
from .results import RunResult, new_run_id, read_app_dir, write_run

DELEGATES = ("cpu", "xnnpack", "gpu", "nnapi", "npu")  # DEVICE_PROTOCOL.md devicekit.delegate
COMPUTE_UNITS = ("all", "cpuOnly", "cpuAndGPU", "cpuAndNeuralEngine")  # DEVICE_PROTOCOL.md DEVICEKIT_COMPUTE_UNITS
POLL_S = 0.5
PROGRESS_S = 1.0
PROGRESS_MAX_S = 15.0


@dataclass(frozen=True)
class BenchConfig:
    artifact: Path
    device: str
    frames: int = 100
    warmup: int = 10
    threads: int = 4
    delegate: str = "xnnpack"
    app: Path | None = None
    duration_s: float | None = None
    timeout_s: float | None = None
    runs_dir: Path = Path("runs")
    app_id: str = "com.devicekit.bench"
    reinstall: bool = False
    run_id: str | None = None
    golden: bool = False  # protocol 2: run the golden check first and report its error next to the latency
    compute_units: str | None = None  # iOS: DEVICEKIT_COMPUTE_UNITS (default: from --delegate)
    team: str | None = None  # iOS: DEVELOPMENT_TEAM for building the benchmark app

    def __post_init__(self):
        if self.frames < 1:
            raise UsageError("--frames must be at least 1")
        if self.warmup < 0:
            raise UsageError("--warmup must not be negative")
        if self.threads < 1:
            raise UsageError("--threads must be at least 1")
        if self.delegate not in DELEGATES:
            raise UsageError(f"--delegate must be one of {', '.join(DELEGATES)}, got {self.delegate!r}")
        if self.compute_units is not None and self.compute_units not in COMPUTE_UNITS:
            raise UsageError(f"--compute-units must be one of {', '.join(COMPUTE_UNITS)}, got {self.compute_units!r}")
        if self.team is not None and not self.team.isalnum():
            raise UsageError(f"--team must be an Apple team id (letters and digits, e.g. ABCDE12345), got {self.team!r}")
        if self.duration_s is not None and self.duration_s <= 0:
            raise UsageError("--duration must be positive")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise UsageError("--timeout must be positive")
        if self.run_id is not None:
            from ..device.base import RUN_RE

            if not RUN_RE.match(self.run_id):
                raise UsageError("--run-id must match [A-Za-z0-9_-]{1,64}")

    def timeout(self) -> float:
        if self.timeout_s:
            return self.timeout_s
        return 300.0 + 2 * (self.duration_s or 0)


def _manifest(artifact: Path):
    """The artifact's manifest, or None (none beside it, or not one devicekit can read: bench runs it anyway)."""
    from ..manifest import read_manifest

    try:
        return read_manifest(artifact, required=False)
    except DevicekitError:
        return None


def _input_norm(artifact: Path):
    m = _manifest(artifact)
    pre = (m.preprocess if m else None) or {}
    return pre.get("mean"), pre.get("std")


def run_meta(artifact: Path, device_name: str, platform: str) -> dict:
    """summary.json's account of what ran where: the artifact, ``device_name`` (what --device named) and, from the
    artifact's manifest, its ``target`` (e.g. tflite-int8), ``model`` (name), ``precision`` (the quantisation mode)
    and ``runtime`` (the one package recorded for ``platform``); None where the manifest has nothing to say."""
    m = _manifest(artifact)
    return {
        "artifact": str(artifact), "artifact_sha256": sha256_file(artifact), "device_name": device_name,
        "platform": platform, "target": m.target if m else None, "model": (m.model or {}).get("name") if m else None,
        "precision": (m.quantization or {}).get("mode") if m else None,
        "runtime": ((m.results or {}).get("runtimes") or {}).get(platform) if m else None,
        "runtimes": {"verify": _verify_runtime(artifact, m)},
    }


def check_artifact(p: Path):
    if not p.exists():
        raise InputError(f"model file not found: {p}")
    if p.suffix.lower() not in (".tflite", ".onnx", ".mlpackage", ".mlmodelc"):
        raise InputError(f"{p.name}: bench runs .tflite, .onnx, .mlpackage or .mlmodelc models")
    if p.suffix.lower() != ".mlmodelc":
        # the one validation (bounds-checked reader, then LiteRT in a child process): a damaged file is bad
        # input (exit 2) before any interpreter in this process or on a device sees it
        from ..runtime.validate import validate_model

        return validate_model(p)
    return None


def _check_platform(artifact: Path, platform: str) -> None:
    from ..registry import platform as platform_named

    p = platform_named(platform)  # DEVICE_PROTOCOL.md: model.tflite on Android, model.mlmodelc/ or .mlpackage/ on iOS
    if artifact.suffix.lower() not in p.bench_suffixes:
        raise InputError(f"{platform} benchmarks run {' or '.join(p.bench_suffixes)} models; {artifact.name} is not one",
                         hint=p.convert_hint)


def run_bench(cfg: BenchConfig, log=lambda msg: None, device=None, cancel=None) -> RunResult:
    """One run on one device. ``cancel``: a threading.Event that, once set, ends the run as Ctrl-C would (a fleet's
    Ctrl-C reaches only its main thread): the app is stopped, the frames so far kept, the run marked interrupted."""
    from ..device import RunSpec, open_device
    from .build import ensure_app

    t0 = time.monotonic()
    artifact = Path(cfg.artifact)
    valid = check_artifact(artifact)
    mean, std = _input_norm(artifact)
    dev = device or open_device(cfg.device, mean=mean, std=std)
    try:
        _check_platform(artifact, dev.info.platform)
        if dev.info.platform == "host":
            from ..device.loop import HOST_DELEGATES

            allowed = HOST_DELEGATES if artifact.suffix.lower() == ".tflite" else ("cpu",)
            if cfg.delegate not in allowed:
                raise UsageError(f"--delegate {cfg.delegate} is not available on the host for {artifact.suffix} "
                                 f"(use {' or '.join(allowed)})")
            runs, why = valid.runs(cfg.delegate) if valid is not None else (True, None)
            if not runs:  # measured in a child process: the host runs it in this one only when it runs there
                raise InputError(f"{artifact.name}: {why}")
        if cfg.golden and dev.info.platform == "web":
            raise UsageError("--golden runs on Android, iOS and the host; the web app does not implement it yet")
        if cfg.compute_units and dev.info.platform != "ios":
            raise UsageError("--compute-units applies to iOS devices (CoreML); on Android use --delegate")
        golden = _golden_files(artifact) if cfg.golden else None
    except (InputError, UsageError):
        dev.close()
        raise
    run_id = cfg.run_id or new_run_id(dev.info.profile or dev.info.platform)
    run_dir = Path(cfg.runs_dir) / run_id
    meta = {
        **run_meta(artifact, cfg.device, dev.info.platform), "device_id": dev.info.id, "profile": dev.info.profile,
        "transport": dev.info.transport,
        "settings": {"frames": cfg.frames, "warmup": cfg.warmup, "threads": cfg.threads, "delegate": cfg.delegate,
                     "compute_units": cfg.compute_units, "golden": cfg.golden,
                     "duration_s": cfg.duration_s, "timeout_s": cfg.timeout(), "app_id": cfg.app_id},
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    try:
        meta["app"] = ensure_app(dev, artifact, cfg.app, cfg.app_id, cfg.reinstall, log, team=cfg.team)
        frames = cfg.frames
        if cfg.duration_s and dev.info.platform != "host":
            frames = _probe_frames(dev, cfg, artifact, run_id, log)
            meta["settings"]["frames"] = frames
        spec = RunSpec(run_id, frames, cfg.warmup, cfg.threads, cfg.delegate, artifact, cfg.timeout(), cfg.app_id,
                       cfg.duration_s if dev.info.platform == "host" else None, golden=golden[0] if golden else None,
                       compute_units=cfg.compute_units)
        result = _run_once(dev, spec, run_dir, meta, log, golden[1] if golden else None, t0, cancel)
    finally:
        dev.close()
        if golden:
            shutil.rmtree(golden[0], ignore_errors=True)
    g = result.summary.get("golden")
    if g is not None and not g["passed"]:
        exc = GateFailed(f"golden check on the device failed: {'; '.join(g['failures'])}",
                         hint=f"results kept in {result.run_dir}; devicekit report {result.run_dir}")
        exc.result = result  # the run itself is complete: callers may still show it
        raise exc
    return result


def _verify_runtime(artifact: Path, m) -> str | None:
    """The runtime verify judged this artifact with (its manifest ``m``'s record, else this host's)."""
    recorded = ((m.results or {}).get("runtimes") or {}).get("verify") if m else None
    if recorded:
        return recorded
    if artifact.suffix.lower() == ".tflite":
        from ..device.loop import runtime_version

        return runtime_version(artifact)
    return "devicekit MIL reference interpreter (CoreML predict needs macOS)" if artifact.suffix.lower() == ".mlpackage" else None


def _golden_files(artifact: Path) -> tuple[Path, dict]:
    """golden.json + golden_input.bin for the artifact in a temporary folder (protocol 2), and the golden doc."""
    from ..app.facts import model_facts
    from ..app.golden import make_golden
    from ..manifest import read_manifest

    manifest = read_manifest(artifact)  # the golden check needs the manifest's tensors and gate
    doc, data = make_golden(artifact, manifest, model_facts(manifest))
    d = Path(tempfile.mkdtemp(prefix="devicekit-golden-"))
    (d / "golden.json").write_text(json.dumps(doc))
    (d / "golden_input.bin").write_bytes(data)
    return d, doc


def _probe_frames(dev, cfg: BenchConfig, artifact: Path, run_id: str, log) -> int:
    """Sustained mode on a phone: a short probe run sets the frame count that fills --duration."""
    from ..device import RunSpec

    spec = RunSpec(f"{run_id}-probe"[:64], 30, cfg.warmup, cfg.threads, cfg.delegate, artifact, cfg.timeout(), cfg.app_id)
    with tempfile.TemporaryDirectory(prefix="devicekit-probe-") as td:
        res = _launch_and_wait(dev, spec, Path(td), log)[0]
    if not res.complete or len(res.rows) == 0:
        raise DeviceError(f"the probe run for --duration failed ({'; '.join(res.problems) or 'no frames'})")
    mean_s = res.rows[:, 5].mean() / 1e6
    frames = max(1, math.ceil(cfg.duration_s / max(mean_s, 1e-6)))
    log(f"sustained mode: {frames} frames for {cfg.duration_s:g} s at {mean_s * 1000:.2f} ms/frame")
    return frames


def _launch_and_wait(dev, spec, local: Path, log, live=None, cancel=None):
    """prepare, launch, poll done.json; returns (AppResult, timed_out). Collects on every exit path."""
    timed_out = False
    collected = False
    try:
        dev.prepare_run(spec)
        log(f"launching run {spec.run_id} on {dev.info.id}")
        dev.launch(spec)
        deadline = time.monotonic() + spec.timeout_s
        every = PROGRESS_S
        next_progress = time.monotonic() + every
        while not dev.finished(spec):
            if cancel is not None and cancel.is_set():
                raise KeyboardInterrupt  # the same path as Ctrl-C: stop the app, keep the frames
            if time.monotonic() > next_progress:
                dev.progress(spec, local)  # frames so far survive the device going away
                if live is not None:
                    live.refresh(local)  # ... and devicekit itself dying (kill -9): runs/<RUN> is reportable
                every = min(every * 2, PROGRESS_MAX_S)  # long sustained runs: copy less often
                next_progress = time.monotonic() + every
            if time.monotonic() > deadline:
                timed_out = True
                log(f"timeout after {spec.timeout_s:g} s: " + ("closing the browser" if dev.info.platform == "web"
                                                              else f"force-stopping {spec.app_id}"))
                dev.stop(spec)
                break
            time.sleep(POLL_S)
        dev.collect(spec, local)
        collected = True
    finally:
        if not collected:
            try:  # the device may be gone: keep what can still be fetched
                dev.stop(spec)
                dev.collect(spec, local)
            except (DevicekitError, OSError):
                pass
    return read_app_dir(local), timed_out


def _run_once(dev, spec, run_dir: Path, meta: dict, log, golden_doc: dict | None = None, t0: float | None = None,
              cancel=None) -> RunResult:
    from .live import LiveRun

    thermal_start = _safe_thermal(dev)
    live = LiveRun(run_dir, spec.run_id, meta)
    created = not run_dir.exists()
    live.start()  # runs/<RUN> exists, marked incomplete, before the first frame
    if hasattr(dev, "live"):
        dev.live = live  # the host loop appends each measured row as it is made
    with tempfile.TemporaryDirectory(prefix="devicekit-pull-") as td:
        local = Path(td)
        fault: BaseException | None = None
        try:
            app, timed_out = _launch_and_wait(dev, spec, local, log, live, cancel)
        except (DevicekitError, KeyboardInterrupt, OSError) as exc:
            fault, app, timed_out = exc, read_app_dir(local), False
        finally:
            live.close()
        if isinstance(fault, (InputError, UsageError)) and not len(app.rows):
            if created:  # bad input found before any frame: nothing to keep
                shutil.rmtree(run_dir, ignore_errors=True)
            raise fault
        thermal_end = _safe_thermal(dev) if fault is None else None
        device = dict(app.device or {})
        if device.get("thermal_start") is None:
            device["thermal_start"] = thermal_start
        if device.get("thermal_end") is None:
            device["thermal_end"] = thermal_end
        device.setdefault("model", dev.info.model)
        meta["thermal_dumpsys"] = {"before": thermal_start, "after": thermal_end}  # devicekit's own readings
        meta["runtimes"] = {**meta.get("runtimes", {}), "device": device.get("runtime"),
                            "build_type": device.get("build_type"), "accelerator": device.get("accelerator")}
        golden = None
        if golden_doc is not None:
            from ..app.golden import judge

            if app.golden is not None:
                golden = judge(app.golden, golden_doc["gate"])
            elif fault is None:
                app.problems.append("the golden check was asked for but the app wrote no golden_result.json "
                                    "(an app of protocol 1? rebuild it with devicekit package)")
        error = _describe_failure(fault, app, timed_out, spec, dev.info.platform)
        if t0 is not None:  # the whole run as the user waited for it: connect, install, push, launch, poll, pull
            meta["wall_s"] = round(time.monotonic() - t0, 3)
        result = write_run(run_dir, spec.run_id, app.rows, device, meta, error, golden)
        if (local / "done.json").exists():
            shutil.copyfile(local / "done.json", run_dir / "app_done.json")
    if fault is not None or error:
        kept = f"{len(app.rows)} measured frames kept in {run_dir} (marked incomplete)"
        if isinstance(fault, KeyboardInterrupt):
            raise Interrupted(f"interrupted; {kept}")
        raise DeviceError(f"{error}; {kept}", hint=f"devicekit report {shlex.quote(str(run_dir))}")
    return result


def _describe_failure(fault, app, timed_out: bool, spec, platform: str = "android") -> str | None:
    if isinstance(fault, KeyboardInterrupt):
        return "interrupted"
    if isinstance(fault, (InputError, UsageError)):
        return fault.message
    if isinstance(fault, DevicekitError):
        return f"device fault: {fault.one_line()}"
    if isinstance(fault, OSError):
        return f"device fault: connection lost ({fault})"
    if timed_out:
        if platform == "web":
            what = "the page stopped or hung" if app.done is None else "the page did not finish"
            return f"timeout: the benchmark page wrote no done.json in {spec.timeout_s:g} s ({what}); the browser was closed"
        what = "the app crashed or hung" if app.done is None else "the app did not finish"
        return f"timeout: no done.json after {spec.timeout_s:g} s ({what}); {spec.app_id} was force-stopped"
    if app.problems:
        return "; ".join(app.problems)
    return None


def _safe_thermal(dev):
    try:
        return dev.thermal()
    except (DevicekitError, OSError):
        return None
