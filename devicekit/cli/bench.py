"""`devicekit bench ARTIFACT --device D`: per-frame latency on a phone or the host."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ._common import bounded, command, emit_json, handle_errors, info, next_steps, set_mode, step

# (lo, hi) for the numbers a run takes, from flags or devicekit.toml: a run always ends
LIMITS = {"frames": (1, 1_000_000), "warmup": (0, 100_000), "threads": (1, 256), "duration": (0.001, 86_400.0),
          "timeout": (0.001, 7 * 86_400.0)}


def register(app: typer.Typer) -> None:
    @app.command("bench")
    @handle_errors
    def bench_cmd(
        artifact: Path = typer.Argument(..., help="Model to run: .tflite (Android, host), .onnx (host), .mlpackage/.mlmodelc (iOS)."),
        device: Optional[List[str]] = typer.Option(None, "--device", "-d", metavar="DEVICE", help="host, a profile (pixel7, galaxy-s23, iphone15pro), an adb serial, host:port, an iOS UDID, or awsdf:PROJECT_ARN\\[/POOL] (AWS Device Farm, alone). Default: devicekit.toml \\[bench] device. Repeat it, or give `all` (every attached phone), to run a fleet in parallel."),
        fleet: Optional[str] = typer.Option(None, "--fleet", metavar="NAME|TAG", help="Run on the devicekit.toml \\[\\[fleet]] entry with this name, or every entry with this tag, in parallel."),
        frames: Optional[int] = typer.Option(None, "--frames", "-n", help="Measured frames (default 100; at most 1,000,000)."),
        warmup: Optional[int] = typer.Option(None, "--warmup", "-w", help="Warm-up frames, not recorded (default 10)."),
        threads: Optional[int] = typer.Option(None, "--threads", "-t", help="Interpreter threads (default 4; in a browser at most its navigator.hardwareConcurrency)."),
        delegate: Optional[str] = typer.Option(None, "--delegate", help="cpu | xnnpack | gpu | npu | nnapi (default xnnpack; cpu for .onnx). Android: the app's LiteRT accelerator (a fallback is reported). iOS without --compute-units: cpu=cpuOnly, gpu=cpuAndGPU, npu/nnapi=cpuAndNeuralEngine, xnnpack=all."),
        compute_units: Optional[str] = typer.Option(None, "--compute-units", help="iOS: CoreML compute units all | cpuOnly | cpuAndGPU | cpuAndNeuralEngine (overrides --delegate)."),
        golden: Optional[bool] = typer.Option(None, "--golden/--no-golden", help="Run the golden check first (the model on the package's fixed input vs the reference outputs) and report its error next to the latency; exit 1 when it fails the gate."),
        team: Optional[str] = typer.Option(None, "--team", help="iOS: Apple development team id for building the benchmark app (DEVELOPMENT_TEAM). Default: devicekit.toml [bench] team."),
        apk: Optional[Path] = typer.Option(None, "--apk", help="Prebuilt benchmark APK (installed when missing)."),
        test_apk: Optional[Path] = typer.Option(None, "--test-apk", help="--device awsdf:...: prebuilt instrumentation test APK (with --apk)."),
        app_bundle: Optional[Path] = typer.Option(None, "--app", help="Prebuilt iOS benchmark App.app."),
        duration: Optional[float] = typer.Option(None, "--duration", help="Sustained mode: run for S seconds (thermal runs; at most 86400)."),
        timeout: Optional[float] = typer.Option(None, "--timeout", help="Seconds to wait for the app (default 300 + 2x duration)."),
        app_id: str = typer.Option("com.devicekit.bench", "--app-id", help="Benchmark app id / bundle id."),
        reinstall: bool = typer.Option(False, "--reinstall", help="Install --apk/--app even when present."),
        runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where runs/<RUN>/ go."),
        run_id: Optional[str] = typer.Option(None, "--run-id", help="Run id ([A-Za-z0-9_-]{1,64}); default: time + device."),
        browser: Optional[str] = typer.Option(None, "--browser", help="--device chrome: the Chromium/Chrome executable (default: chromium on PATH)."),
        backend: Optional[str] = typer.Option(None, "--backend", help="--device chrome*: wasm | webgpu (default wasm; webgpu with --delegate gpu)."),
        json_out: bool = typer.Option(False, "--json", help="Print the run summary as JSON."),
    ):
        """Measure per-frame latency; results go to runs/<RUN>/ (frames.csv, device.json, summary.json).

        Examples: devicekit bench model.tflite --device host --frames 200;
        devicekit bench model.tflite --device pixel7 --apk bench.apk;
        devicekit bench model.tflite --device chrome --threads 2 (LiteRT.js in headless Chromium);
        devicekit bench model.tflite --device all (every attached phone, side by side; --fleet NAME|TAG from devicekit.toml)
        """
        set_mode(json_out)
        from rich.markup import escape

        from .. import mobile_templates  # noqa: F401  (attaches the packagers that render benchmark apps)
        from ..bench import BenchConfig, run_bench
        from ..config import load_project_config
        from ..errors import UsageError

        if apk and app_bundle:
            raise UsageError("give --apk (Android) or --app (iOS), not both")
        toml = load_project_config()  # devicekit.toml [bench] defaults; flags override them

        def pick(flag, key, default):
            return flag if flag is not None else toml.get("bench", key, default)

        if fleet is not None and device:
            raise UsageError("give --device or --fleet, not both")
        devices = list(device or [])
        many = fleet is not None or len(devices) > 1 or devices == ["all"]
        device = None if many else devices[0] if devices else pick(None, "device", None)
        if device == "all":  # [bench] device = "all" in devicekit.toml
            many, devices, device = True, ["all"], None
        if not device and not many:
            raise UsageError("--device is required (host, a profile such as pixel7, a serial or a UDID)",
                             hint="devicekit devices lists what is attached")

        def num(flag, key, default):
            given = flag_values[flag] is not None
            return bounded(f"--{flag}" if given else f"bench.{key} in {toml.path}", pick(flag_values[flag], key, default),
                           *LIMITS[flag])

        flag_values = {"frames": frames, "warmup": warmup, "threads": threads, "duration": duration, "timeout": timeout}
        cfg = BenchConfig(artifact=artifact, device=device or "all", frames=num("frames", "frames", 100),
                          warmup=num("warmup", "warmup", 10), threads=num("threads", "threads", 4),
                          delegate=pick(delegate, "delegate", "cpu" if artifact.suffix.lower() == ".onnx" else "xnnpack"),
                          app=apk or app_bundle,
                          duration_s=bounded("--duration", duration, *LIMITS["duration"]),
                          timeout_s=num("timeout", "timeout", None),
                          runs_dir=runs_dir, app_id=app_id, reinstall=reinstall, run_id=run_id,
                          golden=bool(pick(golden, "golden", False)), compute_units=pick(compute_units, "compute_units", None),
                          team=pick(team, "team", None))
        if many:
            from ._fleet import bench_fleet

            if browser or backend:
                raise UsageError("--browser and --backend apply to one --device chrome, not to a fleet")
            from ..bench.awsdf import is_farm_device

            if test_apk or any(is_farm_device(d) for d in devices):
                raise UsageError("--device awsdf:... runs its own device pool: give it alone (with --test-apk), not in a fleet")
            return bench_fleet(cfg, devices, fleet, toml, json_out)
        from ..web.device import is_web_device, open_web_device

        if (browser or backend) and not is_web_device(device):
            raise UsageError("--browser and --backend apply to --device chrome or chrome-android[:SERIAL]")
        from ..bench.awsdf import is_farm_device

        if test_apk and not is_farm_device(device):
            raise UsageError("--test-apk applies to --device awsdf:PROJECT_ARN[/POOL]")
        if is_farm_device(device):  # AWS Device Farm: its own module (docs/bench.md)
            from .awsdf import run_farm

            return run_farm(cfg, test_apk, json_out)
        from ..errors import GateFailed

        with step(f"bench {artifact.name} on {device}"):
            dev = open_web_device(device, browser, backend) if is_web_device(device) else None
            try:
                res, gate_error = run_bench(cfg, log=lambda msg: info(escape(str(msg))), device=dev), None  # runner lines: plain text
            except GateFailed as exc:  # the golden check failed: the run is complete and kept; say so, then exit 1
                res, gate_error = exc.result, exc
        if json_out:
            emit_json(res.to_json())
            if gate_error:
                raise gate_error
            return
        from ._common import warn

        for key in ("delegate_note", "accelerator_note", "threads_note"):  # what ran differs from what was asked: reported, never silent
            if (res.summary.get("device") or {}).get(key):
                warn(res.summary["device"][key])
        s = res.summary["stats"]
        info(f"[bold]{escape(str(res.summary.get('device', {}).get('model') or device))}[/]: {s['frames']} frames, "
             f"p50 {s['p50_ms']} ms, p90 {s['p90_ms']} ms, p99 {s['p99_ms']} ms, mean {s['mean_ms']} ± {s['std_ms']} ms, "
             f"{s['fps']} FPS, jank>33.3ms {s['jank']['33.3ms']['frames']}, load {s['load_ms']} ms, first frame {s['first_frame_ms']} ms"
             + (", [yellow]throttling[/]" if s.get("throttling") else ""))
        rt = res.summary.get("runtimes") or {}
        if rt.get("device"):
            info(escape(f"runtime: {rt['device']} ({rt.get('build_type') or '?'} build, ran on {rt.get('accelerator') or '?'}); "
                        f"verify ran {rt.get('verify') or '?'}"))
        else:  # a protocol 1 app (generated before protocol 2) does not report it
            info(escape(f"runtime: not reported by the app (protocol {(res.summary.get('device') or {}).get('protocol', '?')}); "
                        f"verify ran {rt.get('verify') or '?'}"))
        g = res.summary.get("golden")
        if g is not None:
            lim = g["limits"]
            err = (f"landmarks {g['landmarks_px_mean']:.4g} px mean, {g['landmarks_px_max']:.4g} px max"
                   if g.get("landmarks_px_mean") is not None else
                   ", ".join(f"{o['name']} rel_l2 {o['rel_l2']:.3g}" for o in g.get("outputs") or []))
            verdict = "[green]pass[/]" if g["passed"] else "[bold red]FAIL[/]"
            info(f"golden check on the device: {escape(err)} (gate {', '.join(f'{k} {v:g}' for k, v in lim.items())}): {verdict}")
        info(f"results: {escape(str(res.run_dir))}")
        if gate_error:
            raise gate_error
        next_steps(command("devicekit", "report", res.run_dir, "-o", "report.html"))
