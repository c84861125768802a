"""bench on the host, statistics, run files, report, build commands, and the light-import guarantee."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from device_tests.models import tiny_onnx, tiny_tflite  # noqa: E402


def cli(*args, env=None, timeout=300):
    e = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "devicekit", *args], capture_output=True, text=True, timeout=timeout,
                          env=e, cwd=str(ROOT), stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def tfl():
    return tiny_tflite()


@pytest.fixture(scope="module")
def host_run(tfl, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    r = cli("bench", str(tfl), "--device", "host", "--frames", "80", "--warmup", "5", "--threads", "1",
            "--runs-dir", str(runs), "--run-id", "h1", "--json")
    assert r.returncode == 0, r.stderr
    return runs / "h1", json.loads(r.stdout)


def test_host_run_files(host_run):
    run, out = host_run
    assert out["complete"] is True
    lines = (run / "frames.csv").read_text().splitlines()
    assert lines[0] == "frame,start_ns,preprocess_us,inference_us,postprocess_us,total_us" and len(lines) == 81
    rows = np.array([list(map(int, ln.split(","))) for ln in lines[1:]])
    assert (rows[:, 0] == np.arange(80)).all() and (np.diff(rows[:, 1]) > 0).all()
    assert (rows[:, 5] >= rows[:, 3]).all()  # total covers inference
    dev = json.loads((run / "device.json").read_text())
    assert dev["protocol"] == 2 and dev["delegate"] == "xnnpack" and dev["load_us"] > 0 and dev["peak_rss_kb"] > 0
    from importlib import metadata

    assert dev["runtime"] == f"litert {metadata.version('ai-edge-litert')}" and dev["build_type"] == "release"
    assert dev["accelerator"] == "cpu" and "accelerator_note" not in dev
    s = json.loads((run / "summary.json").read_text())
    st = s["stats"]
    assert s["schema"] == "devicekit.bench/1" and s["platform"] == "host"
    ms = rows[:, 5] / 1000
    assert st["p50_ms"] == pytest.approx(np.percentile(ms, 50), abs=1e-3)
    assert st["p99_ms"] == pytest.approx(np.percentile(ms, 99), abs=1e-3)
    assert st["min_ms"] <= st["p50_ms"] <= st["p90_ms"] <= st["p95_ms"] <= st["p99_ms"] <= st["max_ms"]
    assert st["jank"]["33.3ms"]["frames"] == int((ms > 33.3).sum()) and len(st["over_time"]) == 10


def test_report_formats(host_run, tfl, tmp_path):
    run, _ = host_run
    r2 = cli("bench", str(tfl), "--device", "host", "--frames", "30", "--delegate", "cpu",
             "--runs-dir", str(tmp_path), "--run-id", "h2")
    assert r2.returncode == 0, r2.stderr
    r = cli("report", str(run), str(tmp_path / "h2"), "-o", str(tmp_path / "rep.html"))
    assert r.returncode == 0, r.stderr
    html = (tmp_path / "rep.html").read_text()
    assert html.count("<svg") == 3 and "Latency CDF" in html and "[h1]" in html and "[h2]" in html
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")  # self-contained
    import re
    import xml.etree.ElementTree as ET

    for svg in re.findall(r"<svg.*?</svg>", html, re.S):
        root = ET.fromstring(svg)  # well-formed
        assert root.findall(".//{http://www.w3.org/2000/svg}polyline")
    md = cli("report", str(run), str(tmp_path / "h2"), "--format", "md")
    assert md.returncode == 0 and md.stdout.count("\n| ") == 3 and "| xnnpack |" in md.stdout and "| cpu |" in md.stdout
    js = json.loads(cli("report", str(run), "--format", "json").stdout)
    assert js["table"][0]["frames"] == 80
    bad = cli("report", str(tmp_path))
    assert bad.returncode == 2 and "not a bench run" in bad.stderr


def test_host_onnx_and_duration(tmp_path):
    r = cli("bench", str(tiny_onnx()), "--device", "host", "--delegate", "cpu", "--duration", "0.5", "--json",
            "--runs-dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)["summary"]["stats"]
    span = s["frames"] / s["fps"]
    assert s["frames"] > 10 and 0.3 < span < 1.5


@pytest.mark.parametrize("case", ["missing", "not-a-model", "corrupt", "bad-delegate", "bad-frames", "unknown-device",
                                  "bad-units", "bad-team", "golden-no-manifest"])
def test_bad_input_is_one_line(case, tfl, tmp_path):
    model = str(tfl)
    extra = []
    if case == "missing":
        model = str(tmp_path / "nope.tflite")
    elif case == "not-a-model":
        (tmp_path / "x.txt").write_text("hi")
        model = str(tmp_path / "x.txt")
    elif case == "corrupt":
        p = tmp_path / "c.tflite"
        p.write_bytes(tfl.read_bytes()[:200])
        model = str(p)
    elif case == "bad-delegate":
        extra = ["--delegate", "gpu"]
    elif case == "bad-frames":
        extra = ["--frames", "0"]
    elif case == "bad-units":
        extra = ["--compute-units", "gpuOnly"]
    elif case == "bad-team":
        extra = ["--team", "my team; rm -rf /"]
    elif case == "golden-no-manifest":
        extra = ["--golden"]
    device = "nokia3310" if case == "unknown-device" else "host"
    r = cli("bench", model, "--device", device, "--runs-dir", str(tmp_path / "runs"), *extra,
            env={"DEVICEKIT_ADB": "direct", "DEVICEKIT_ADB_HOSTS": "", "PATH": "/usr/bin:/bin"})
    assert r.returncode in (2, 3), r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr


def test_interrupted_host_run_keeps_frames(tfl, tmp_path, monkeypatch):
    from devicekit.bench import BenchConfig, run_bench
    from devicekit.device import loop
    from devicekit.errors import Interrupted

    real = loop.run_loop

    def interrupted(*a, **kw):
        def on_row(row):
            if row[0] == 24:
                raise KeyboardInterrupt
        kw["on_row"] = on_row
        return real(*a, **kw)

    monkeypatch.setattr("devicekit.device.host.run_loop", interrupted)
    with pytest.raises(Interrupted, match="interrupted; 25 measured frames kept"):  # exit 130, frames kept
        run_bench(BenchConfig(artifact=tfl, device="host", frames=100, runs_dir=tmp_path, run_id="int1"))
    s = json.loads((tmp_path / "int1/summary.json").read_text())
    assert s["complete"] is False and s["stats"]["frames"] == 25


def test_stats_throttling_and_jank():
    from devicekit.bench.stats import summarize

    n = 200
    start = np.cumsum(np.full(n, 20_000_000))
    total = np.r_[np.full(100, 10_000), np.full(100, 20_000)]  # 10 ms then 20 ms: sustained slow-down
    rows = np.c_[np.arange(n), start, np.zeros(n), total, np.zeros(n), total].astype(np.int64)
    s = summarize(rows, {"thermal_start": 0, "thermal_end": 1, "load_us": 1500, "first_frame_us": 30000})
    assert s["throttling"] is True and s["thermal"]["change"] == 1 and s["jank"]["16.7ms"]["frames"] == 100
    assert s["load_ms"] == 1.5 and s["first_frame_ms"] == 30.0
    flat = np.c_[np.arange(n), start, np.zeros(n), np.full(n, 10_000), np.zeros(n), np.full(n, 10_000)].astype(np.int64)
    assert summarize(flat)["throttling"] is False
    assert summarize(np.zeros((0, 6), np.int64))["frames"] == 0


def test_protocol_result_parsing(tmp_path):
    from devicekit.bench.results import read_app_dir

    (tmp_path / "frames.csv").write_text("frame,start_ns,preprocess_us,inference_us,postprocess_us,total_us\n0,1,2,3,4,9\n1,5,2,3,4,9\n")
    (tmp_path / "done.json").write_text(json.dumps({"protocol": 1, "status": "ok", "frames": 3, "error": None}))
    res = read_app_dir(tmp_path)
    assert len(res.rows) == 2 and not res.complete and "frames.csv has 2 rows, done.json says 3" in res.problems
    (tmp_path / "frames.csv").write_text("frame,start_ns,preprocess_us,inference_us,postprocess_us,total_us\n0,1,2,3,4,9\nx,y\n")
    res = read_app_dir(tmp_path)
    assert len(res.rows) == 1 and any("does not parse" in p for p in res.problems)
    (tmp_path / "done.json").unlink()
    assert "no done.json" in read_app_dir(tmp_path).problems[0]
    # protocol 1 results (apps generated before protocol 2) are still read; an unknown protocol is a problem
    ok = "frame,start_ns,preprocess_us,inference_us,postprocess_us,total_us\n0,1,2,3,4,9\n"
    v1 = {"protocol": 1, "model": "Pixel 7", "manufacturer": "Google", "os": "android 14", "soc": "GS201", "delegate": "xnnpack",
          "threads": 4, "thermal_start": 0, "thermal_end": 0, "load_us": 5, "first_frame_us": 9, "peak_rss_kb": None}
    for proto, device, complete in ((1, v1, True), (2, {**v1, "protocol": 2, "runtime": "litert 2.1.0", "build_type": "release",
                                                        "accelerator": "gpu"}, True), (3, {**v1, "protocol": 3}, False)):
        (tmp_path / "frames.csv").write_text(ok)
        (tmp_path / "device.json").write_text(json.dumps(device))
        (tmp_path / "done.json").write_text(json.dumps({"protocol": proto, "status": "ok", "frames": 1, "error": None}))
        res = read_app_dir(tmp_path)
        assert res.complete is complete and res.device["protocol"] == proto and res.golden is None, res.problems
    assert "devicekit reads protocol 1 and 2" in " ".join(res.problems)
    (tmp_path / "golden_result.json").write_text(json.dumps({"protocol": 2, "outputs": [{"name": "o", "max_abs": 0.1, "rel_l2": 0.01}],
                                                             "landmarks_px_mean": 0.2, "landmarks_px_max": 0.4}))
    assert read_app_dir(tmp_path).golden["landmarks_px_mean"] == 0.2


def test_build_commands_and_cache_key(tfl, tmp_path, monkeypatch):
    from devicekit.bench import build
    from devicekit.errors import EnvironmentMissing

    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "gradlew").write_text("#!/bin/sh\n")
    # release configuration (R8, not debuggable) + the benchmark activity: the "benchmark" build type
    assert build.gradle_command(proj) == [str(proj / "gradlew"), "-p", str(proj), "--no-daemon", ":app:assembleBenchmark"]
    assert build.gradle_output(proj) == proj / "app/build/outputs/apk/benchmark/app-benchmark.apk"
    (proj / "gradlew").unlink()
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(EnvironmentMissing, match="no Gradle wrapper"):
        build.gradle_command(proj)
    monkeypatch.setenv("PATH", os.environ["PATH"])
    cmd = build.xcodebuild_command(Path("/p/B.xcodeproj"), "DevicekitBench", "UDID1", Path("/d"), "ABCDE12345")
    assert cmd[:5] == ["xcodebuild", "-project", "/p/B.xcodeproj", "-scheme", "DevicekitBench"]
    assert cmd[cmd.index("-destination") + 1] == "platform=iOS,id=UDID1"
    assert cmd[cmd.index("-configuration") + 1] == "Release" and "DEVELOPMENT_TEAM=ABCDE12345" in cmd
    key = build.cache_key(tfl)
    from devicekit.fsutil import sha256_file

    assert key.startswith(sha256_file(tfl)[:16]) and key.endswith(f"-t{build.template_version()}")
    monkeypatch.delenv("ANDROID_HOME", raising=False)
    monkeypatch.delenv("ANDROID_SDK_ROOT", raising=False)
    with pytest.raises(EnvironmentMissing, match="ANDROID_HOME") as ei:
        build.build_app("android", tfl, "SERIAL", "com.devicekit.bench")
    assert "--apk" in ei.value.one_line()
    monkeypatch.delenv("ANDROID_HOME", raising=False)
    monkeypatch.setattr(build, "xcode_dir", lambda: None)
    with pytest.raises(EnvironmentMissing, match="Xcode") as ei:
        build.build_app("ios", tfl, "UDID", "com.devicekit.bench")
    assert "--app" in ei.value.one_line()
    from devicekit.errors import UsageError

    monkeypatch.setattr(build, "xcode_dir", lambda: "/Applications/Xcode.app/Contents/Developer")
    with pytest.raises(UsageError, match="development team") as ei:  # a fresh project cannot be signed without one
        build.build_app("ios", tfl, "UDID", "com.devicekit.bench")
    assert "--team" in ei.value.one_line() and "devicekit.toml" in ei.value.one_line()


def test_build_renders_with_mobile_templates_then_runs_gradle(tmp_path, monkeypatch):
    """With an SDK present: render the benchmark app from mobile_templates, then the build command runs."""
    from devicekit.bench import build
    from devicekit.errors import DeviceError

    art = tmp_path / "m.tflite"
    art.write_bytes(tiny_tflite().read_bytes())
    from devicekit.manifest import Manifest, TensorInfo, finalize

    finalize(Manifest(artifact=art.name, target="tflite-fp32", format="tflite",
                      model={"name": "tiny", "source": "test", "task": "landmarks", "landmarks": 68, "layout": "ibug68",
                             "coords": "input_pixels"},
                      inputs=[TensorInfo("input", [1, 64, 64, 3], "float32", "NHWC")],
                      outputs=[TensorInfo("out", [1, 136], "float32")],
                      preprocess={"shape": [1, 3, 64, 64], "layout": "NCHW", "mean": [127.5] * 3, "std": [128.0] * 3,
                                  "color": "rgb"}), art)
    monkeypatch.setenv("ANDROID_HOME", str(tmp_path))
    monkeypatch.setenv("DEVICEKIT_CACHE", str(tmp_path / "cache"))
    calls = []

    def recording_run(cmd, **kw):  # there is no Android SDK here, and the wrapper would download Gradle: record instead
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "FAILURE: Build failed (recorded, not run)")

    monkeypatch.setattr(build.subprocess, "run", recording_run)
    with pytest.raises(DeviceError, match="building the benchmark app failed"):
        build.build_app("android", art, "SERIAL", "com.devicekit.bench")
    slot = next((tmp_path / "cache" / "apps").iterdir())
    assert slot.name.startswith("android-com.devicekit.bench-") and build.cache_key(art) in slot.name
    project = slot / "project"
    # the project's own Gradle wrapper builds the release-configured benchmark APK
    assert calls == [[str(project / "gradlew"), "-p", str(project), "--no-daemon", ":app:assembleBenchmark"]]
    assert os.access(project / "gradlew", os.X_OK) and (project / "gradle/wrapper/gradle-wrapper.jar").is_file()
    assert (project / "settings.gradle.kts").exists()


def test_profiles_data():
    from devicekit.device.profiles import get_profile, match_model, profiles

    p = profiles()
    for name in ["pixel6", "pixel7", "pixel8pro", "pixel9", "galaxy-s22", "galaxy-s23", "galaxy-s24ultra",
                 "iphone12", "iphone13pro", "iphone15pro", "iphone16promax"]:
        assert name in p and p[name]["source"] and p[name]["models"]
    assert match_model("android", "Pixel 7")["id"] == "pixel7"
    assert match_model("android", "SM-S911B")["id"] == "galaxy-s23"
    assert match_model("android", "SM-S911X")["id"] == "galaxy-s23"  # region suffix by prefix
    assert match_model("ios", "iPhone15,2")["id"] == "iphone14pro"
    assert match_model("android", "Nokia 3310") is None
    assert get_profile("Galaxy_S23")["id"] == "galaxy-s23"


def test_bench_devices_report_without_torch_or_tensorflow(tfl, tmp_path):
    """The light commands run in a process where importing torch/tensorflow fails."""
    runs = tmp_path / "runs"
    from device_tests.models import tiny_landmark_tflite

    landmarks = tiny_landmark_tflite(tmp_path / "lm")
    commands = [["bench", str(tfl), "--device=host", "--frames=20", f"--runs-dir={runs}", "--run-id=lt"],
                ["bench", str(landmarks), "--device=host", "--frames=5", "--golden", f"--runs-dir={runs}", "--run-id=lg"],
                ["devices", "--json"],
                ["report", str(runs / "lt"), "-o", str(tmp_path / "r.html")]]
    from tests.cli_run import BLOCK_HEAVY

    code = BLOCK_HEAVY + f"""
from devicekit.cli import app
for args in {commands!r}:
    try:
        app(args, standalone_mode=False)
    except SystemExit as e:
        assert not e.code, (args, e.code)
bad = [m for m in sys.modules if m.split(".")[0] in ("torch", "tensorflow")]
assert not bad, bad
print("LIGHT-OK")
"""
    # PATH without adb/xcrun/browsers: `devices` must not start daemons from a unit test
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=str(ROOT),
                       env=dict(os.environ, DEVICEKIT_ADB="direct", DEVICEKIT_ADB_HOSTS="", PATH=str(tmp_path / "no-bin")))
    assert "LIGHT-OK" in r.stdout + r.stderr, r.stderr[-2000:]  # --json mode points stdout at stderr
    assert (tmp_path / "r.html").exists() and (runs / "lt" / "summary.json").exists()
    assert json.loads((runs / "lg" / "summary.json").read_text())["golden"]["passed"] is True  # --golden stays light too


def test_devicekit_toml_bench_defaults(tfl, tmp_path):
    (tmp_path / "devicekit.toml").write_text('[bench]\ndevice = "host"\nframes = 17\ndelegate = "cpu"\n')
    r = subprocess.run([sys.executable, "-m", "devicekit", "bench", str(tfl), "--json", "--threads", "2"],
                       capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)["summary"]
    assert s["stats"]["frames"] == 17 and s["settings"]["delegate"] == "cpu" and s["settings"]["threads"] == 2
    assert (tmp_path / "runs").is_dir()
    # protocol 2's settings live there too: the golden check, the iOS team and compute units
    from device_tests.models import tiny_landmark_tflite

    art = tiny_landmark_tflite(tmp_path / "lm")
    (tmp_path / "devicekit.toml").write_text('[bench]\ndevice = "host"\nframes = 5\ngolden = true\nteam = "ABCDE12345"\n'
                                            'compute_units = "all"\n')
    r = subprocess.run([sys.executable, "-m", "devicekit", "bench", str(art), "--json"], capture_output=True, text=True,
                       timeout=120, cwd=str(tmp_path))
    assert r.returncode == 2 and "--compute-units applies to iOS" in r.stderr  # read from the file, and checked
    (tmp_path / "devicekit.toml").write_text('[bench]\ndevice = "host"\nframes = 5\ngolden = true\nteam = "ABCDE12345"\n')
    r = subprocess.run([sys.executable, "-m", "devicekit", "bench", str(art), "--json"], capture_output=True, text=True,
                       timeout=120, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)["summary"]
    assert s["settings"]["golden"] is True and s["golden"]["passed"] and s["golden"]["limits"] == {"rel_l2": 0.0001}
    assert s["runtimes"]["device"] == s["runtimes"]["verify"]  # the host runs what verify ran
    (tmp_path / "devicekit.toml").write_text('[bench]\nframez = 3\n')
    r = subprocess.run([sys.executable, "-m", "devicekit", "bench", str(tfl), "--device", "host"],
                       capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert r.returncode == 2 and "unknown key bench.framez" in r.stderr


def test_devices_survives_a_broken_devicectl(tmp_path):
    """A failing `xcrun devicectl` shows as one unavailable row; Android and host are still listed."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    xcrun = bindir / "xcrun"  # a broken stand-in: exits 1 with an error, like devicectl without a working CoreDevice
    xcrun.write_text("#!/bin/sh\necho 'ERROR: CoreDevice service unavailable' >&2\nexit 1\n")
    xcrun.chmod(0o755)
    r = cli("devices", "--json", env={"PATH": str(bindir), "DEVICEKIT_ADB": "direct", "DEVICEKIT_ADB_HOSTS": ""})
    assert r.returncode == 0, r.stderr
    devs = json.loads(r.stdout)["devices"]
    ios = [d for d in devs if d["platform"] == "ios"]
    assert len(ios) == 1 and ios[0]["state"] == "unavailable" and "CoreDevice service unavailable" in ios[0]["extra"]["error"]
    assert any(d["id"] == "host" for d in devs)
