"""The web target: package --platform web, the local server, bench --device chrome (real headless Chromium),
chrome-android's adb + DevTools path, and clean errors. Models are real int8 .tflite files from TensorFlow's
converter (tests/test_package_models.py) with devicekit manifests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_package_models import make_tflite  # noqa: E402

from devicekit.errors import EnvironmentMissing, InputError, UsageError  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DK = [sys.executable, "-m", "devicekit"]


def _have_web() -> str | None:
    from devicekit.mobile_templates.webapp import find_detector, find_node_modules
    from devicekit.web.browser import find_browser

    try:
        find_browser(), find_node_modules(), find_detector()
    except EnvironmentMissing as e:
        return e.message
    return None


WHY = _have_web()
needs_web = pytest.mark.skipif(WHY is not None, reason=f"web target not set up: {WHY} (make setup)")


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """A 128x128 RGB int8-input landmark model (float output) with a devicekit manifest."""
    d = tmp_path_factory.mktemp("web-models")
    return make_tflite(d, "tinyface", (1, 3, 128, 128), 68, "rgb", (127.5,), (128.0,), int8_output=False,
                       crop={"detector": "opencv-haar-frontalface-default", "enlarge": 1.3, "square": True,
                             "shift_y": 0.12, "rotation": False},
                       one_euro={"min_cutoff": 1.5, "beta": 0.01, "d_cutoff": 1.0})


def _our_chromiums() -> list[int]:
    import psutil

    out = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any("devicekit-chromium-" in a for a in (p.info["cmdline"] or [])):
                out.append(p.info["pid"])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return out


@needs_web
def test_package_web_config_from_manifest(tiny, tmp_path):
    r = subprocess.run([*DK, "package", str(tiny), "--platform", "web", "-o", str(tmp_path / "app"), "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    app = Path(res["out_dir"])
    cfg = json.loads((app / "config.json").read_text())
    assert (cfg["inputWidth"], cfg["inputHeight"], cfg["channels"], cfg["color"], cfg["inputLayout"]) == (128, 128, 3, "rgb", "NHWC")
    assert cfg["inputDtype"] == "int8" and cfg["numLandmarks"] == 68 and cfg["mean"] == [127.5] * 3
    assert (cfg["cropEnlarge"], cfg["cropShiftY"]) == (1.3, 0.12)
    assert cfg["oneEuro"] == {"min_cutoff": 1.5, "beta": 0.01, "d_cutoff": 1.0}
    assert (app / "model" / "model.tflite").read_bytes() == tiny.read_bytes()
    core = (app / "vendor/litertjs/core/index.js").read_text()
    assert 'dtype: "int8"' in core  # the int8 row added to LiteRT.js's dtype table
    assert (app / "vendor/litertjs/wasm/litert_wasm_threaded_internal.wasm").stat().st_size > 1_000_000
    assert (app / "model" / "face_detection_short_range.tflite").exists()
    html = (app / "index.html").read_text()
    assert '"@litertjs/core": "./vendor/litertjs/core/index.js"' in html
    # again without --force: refused; with --force: replaced
    r2 = subprocess.run([*DK, "package", str(tiny), "--platform", "web", "-o", str(app)], capture_output=True, text=True, timeout=120)
    assert r2.returncode == 2 and "--force" in r2.stderr and "Traceback" not in r2.stderr


def test_package_web_bad_inputs(tiny, tmp_path, monkeypatch):
    from devicekit.mobile_templates.webapp import patch_litertjs, render_web

    with pytest.raises(InputError, match="does not exist"):
        render_web(tmp_path / "nope.tflite", tmp_path / "o")
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"x")
    r = subprocess.run([*DK, "package", str(onnx), "--platform", "web"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "Traceback" not in r.stderr and r.stderr.strip()
    with pytest.raises(EnvironmentMissing, match="unexpected dtype table"):
        patch_litertjs("var DATATYPES = [];")
    # an explicit $DEVICEKIT_NODE_MODULES without LiteRT.js is an error, not a silent download
    monkeypatch.setenv("DEVICEKIT_NODE_MODULES", str(tmp_path / "empty"))
    from devicekit.mobile_templates import webapp as rmod

    with pytest.raises(EnvironmentMissing, match="has no @litertjs/core") as e:
        rmod.find_node_modules()
    assert "npm ci" in e.value.hint


def test_server_headers_results_and_refusals(tmp_path):
    from devicekit.web.server import WebServer

    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "x.wasm").write_bytes(b"\0asm")
    (tmp_path / "secret.txt").write_text("no")
    got = []
    with WebServer(tmp_path / "app", tmp_path / "res", on_result=lambda run, name: got.append((run, name))) as srv:
        assert srv._httpd.server_address[0] == "127.0.0.1"
        with urllib.request.urlopen(srv.origin + "/x.wasm") as r:
            assert r.headers["Content-Type"] == "application/wasm"
            assert r.headers["Cross-Origin-Opener-Policy"] == "same-origin"
            assert r.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
        url = srv.origin + "/devicekit/results/run_1/done.json"
        # an upload is bound to an open run and its random token: none, a wrong one, or another run's: 403
        token = srv.expect("run_1")
        other = srv.expect("run_2")
        for headers in ({}, {"X-Devicekit-Token": "guess"}, {"X-Devicekit-Token": other}):
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(urllib.request.Request(url, data=b"{}", method="POST", headers=headers))
            assert e.value.code == 403
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(urllib.request.Request(srv.origin + "/devicekit/results/run_3/done.json", data=b"{}",
                                                          method="POST", headers={"X-Devicekit-Token": token}))
        assert e.value.code == 403 and not (tmp_path / "res" / "run_1").exists() and not (tmp_path / "res" / "run_3").exists()
        req = urllib.request.Request(url, data=b'{"protocol": 1}', method="POST", headers={"X-Devicekit-Token": token})
        with urllib.request.urlopen(req) as r:
            assert r.status == 204
        assert (tmp_path / "res/run_1/done.json").read_bytes() == b'{"protocol": 1}' and got == [("run_1", "done.json")]
        for bad in ("/devicekit/results/run_1/evil.sh", "/devicekit/results/..%2f..%2fx/done.json", "/elsewhere"):
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(urllib.request.Request(srv.origin + bad, data=b"x", method="POST",
                                                              headers={"X-Devicekit-Token": token}))
            assert e.value.code in (400, 404)
        for bad in ("/../secret.txt", "/%2e%2e/secret.txt", "/"):
            with pytest.raises(urllib.error.HTTPError):
                urllib.request.urlopen(srv.origin + bad)
    assert not (tmp_path / "res" / "evil.sh").exists()
    with pytest.raises(ValueError, match="must not be inside"):  # results are never written into what is served
        WebServer(tmp_path / "app", tmp_path / "app" / "results")
    with WebServer(tmp_path / "app", None) as srv:  # `python -m devicekit.web.server APP`: serving only
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(urllib.request.Request(srv.origin + "/devicekit/results/r/frames.csv", data=b"x",
                                                          method="POST", headers={"X-Devicekit-Token": ""}))
        assert e.value.code == 403 and not (tmp_path / "app" / "results").exists()


@needs_web
def test_bench_chrome_end_to_end_and_nothing_left(tiny, tmp_path):
    before = set(_our_chromiums())
    runs = tmp_path / "runs"
    r = subprocess.run([*DK, "bench", str(tiny), "--device", "chrome", "--frames", "12", "--warmup", "2", "--threads", "2",
                        "--runs-dir", str(runs), "--run-id", "web1", "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    s = json.loads(r.stdout)
    run = runs / "web1"
    rows = (run / "frames.csv").read_text().splitlines()
    assert rows[0] == "frame,start_ns,preprocess_us,inference_us,postprocess_us,total_us" and len(rows) == 13
    vals = [list(map(int, x.split(","))) for x in rows[1:]]
    assert all(v[3] > 0 and v[5] >= v[2] + v[3] for v in vals)
    dev = json.loads((run / "device.json").read_text())
    assert dev["delegate"] == "litert.js-wasm" and dev["threads"] == 2 and dev["cross_origin_isolated"] is True
    assert dev["load_us"] > 0 and "Chrome" in dev["model"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["platform"] == "web" and summary["stats"]["frames"] == 12 and s["summary"]["stats"]["frames"] == 12
    rep = subprocess.run([*DK, "report", str(run), "-o", str(tmp_path / "r.html")], capture_output=True, text=True, timeout=120)
    assert rep.returncode == 0, rep.stderr
    assert set(_our_chromiums()) - before == set()  # no browser process outlives the run


@needs_web
def test_bench_chrome_caps_threads_at_the_browsers_cores(tiny, tmp_path):
    """LiteRT.js asked for more threads than the browser has cores hung (0 frames, a timeout at 300 s, with the
    default --threads 4 on a 2-core machine): the page caps them at navigator.hardwareConcurrency and says so."""
    cores = os.cpu_count() or 1
    r = subprocess.run([*DK, "bench", str(tiny), "--device", "chrome", "--frames", "6", "--warmup", "1", "--threads",
                        str(cores + 2), "--timeout", "120", "--runs-dir", str(tmp_path), "--run-id", "cap"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    dev = json.loads((tmp_path / "cap" / "device.json").read_text())
    assert dev["threads"] <= cores and dev["threads_requested"] == cores + 2
    assert f"asked for {cores + 2} threads" in dev["threads_note"] and "asked for" in r.stderr  # warned, not silent


@needs_web
def test_bench_chrome_errors_are_one_line(tiny, tmp_path):
    r = subprocess.run([*DK, "bench", str(tiny), "--device", "chrome", "--browser", str(tmp_path / "nochrome")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 3 and "not an executable" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([*DK, "bench", str(tiny), "--device", "chrome", "--backend", "cuda"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--backend" in r.stderr
    r = subprocess.run([*DK, "bench", str(tiny), "--device", "host", "--backend", "wasm"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "chrome" in r.stderr
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"TFL3" + os.urandom(64))
    r = subprocess.run([*DK, "bench", str(bad), "--device", "chrome"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "Traceback" not in r.stderr


@needs_web
def test_browser_dies_mid_run_keeps_a_clear_error(tiny, tmp_path):
    """A browser that goes away is a device fault: the run is written, marked incomplete, nothing is left running."""
    from devicekit.bench import BenchConfig, run_bench
    from devicekit.errors import DeviceError
    from devicekit.web.device import ChromeDevice

    class Crashing(ChromeDevice):
        def launch(self, spec):
            super().launch(spec)
            os.killpg(self._chromium.pid, signal.SIGKILL)  # the browser crashes before the page reports anything

    before = set(_our_chromiums())
    cfg = BenchConfig(artifact=tiny, device="chrome", frames=5, warmup=0, threads=1, runs_dir=tmp_path, run_id="dies")
    with pytest.raises(DeviceError, match="incomplete"):
        run_bench(cfg, device=Crashing())
    assert json.loads((tmp_path / "dies" / "summary.json").read_text())["complete"] is False
    assert set(_our_chromiums()) - before == set()

    class DiesLater(ChromeDevice):
        def finished(self, spec):
            got = self._run_dir(spec) / "frames.csv"
            if self._chromium is not None and self._chromium.alive() and got.exists() and got.read_text().count("\n") > 3:
                os.killpg(self._chromium.pid, signal.SIGKILL)  # crash after the page posted frames so far
            return super().finished(spec)

    cfg = BenchConfig(artifact=tiny, device="chrome", frames=100000, warmup=0, threads=1, runs_dir=tmp_path, run_id="later")
    with pytest.raises(DeviceError, match="browser exited") as e:
        run_bench(cfg, device=DiesLater())
    assert "kept" in e.value.message
    s = json.loads((tmp_path / "later" / "summary.json").read_text())
    assert s["complete"] is False and s["stats"]["frames"] >= 3  # the frames measured before the crash are kept
    assert set(_our_chromiums()) - before == set()


def test_browser_timeout_is_worded_for_the_browser():
    """A browser run that times out named `com.devicekit.bench`, an Android app id."""
    import numpy as np

    from devicekit.bench.results import AppResult
    from devicekit.bench.runner import _describe_failure
    from devicekit.device.base import RunSpec

    spec = RunSpec("r1", 50, 1, 2, "xnnpack", Path("m.tflite"), 300.0)
    app = AppResult(np.zeros((0, 6), np.int64))
    web = _describe_failure(None, app, True, spec, "web")
    assert "benchmark page" in web and "browser was closed" in web and "com.devicekit.bench" not in web
    assert "com.devicekit.bench was force-stopped" in _describe_failure(None, app, True, spec, "android")


def test_chrome_android_adb_commands():
    from devicekit.web.device import adb_setup_commands, adb_teardown_commands, pick_backend

    setup = adb_setup_commands("/usr/bin/adb", "R58M123ABC", 8765, 9222)
    assert setup[1] == ["/usr/bin/adb", "-s", "R58M123ABC", "reverse", "tcp:8765", "tcp:8765"]
    assert setup[2] == ["/usr/bin/adb", "-s", "R58M123ABC", "forward", "tcp:9222", "localabstract:chrome_devtools_remote"]
    assert setup[0][3:6] == ["shell", "am", "start"] and "com.android.chrome/com.google.android.apps.chrome.Main" in setup[0]
    assert adb_teardown_commands("adb", "S", 1, 2) == [["adb", "-s", "S", "forward", "--remove", "tcp:2"],
                                                       ["adb", "-s", "S", "reverse", "--remove", "tcp:1"]]
    assert pick_backend(None, "gpu") == "webgpu" and pick_backend(None, "xnnpack") == "wasm"
    with pytest.raises(UsageError):
        pick_backend("metal", "cpu")


@needs_web
def test_chrome_android_devtools_path_against_a_real_chrome(tiny, tmp_path):
    """The phone's side is a real Chromium with a DevTools port (what `adb forward` exposes on the host):
    the page is opened through PUT /json/new and reports through the server, exactly as on a phone."""
    from devicekit.bench import BenchConfig, run_bench
    from devicekit.web.browser import Chromium
    from devicekit.web.device import ChromeAndroidDevice, free_port

    port = free_port()
    calls = []

    class Recorded(ChromeAndroidDevice):
        def _adb(self, args):
            calls.append(args[3:])  # adb itself needs a phone; the commands are recorded

    phone = Chromium("about:blank", extra=[f"--remote-debugging-port={port}"])
    try:
        dev = Recorded(serial="emulator-5554", adb="adb", devtools_port=port)
        cfg = BenchConfig(artifact=tiny, device="chrome-android:emulator-5554", frames=6, warmup=1, threads=1,
                          runs_dir=tmp_path, run_id="andr")
        res = run_bench(cfg, device=dev)
    finally:
        phone.close()
    assert res.summary["stats"]["frames"] == 6
    assert calls[1][:1] == ["reverse"] and calls[2] == ["forward", f"tcp:{port}", "localabstract:chrome_devtools_remote"]
    assert calls[-2][:2] == ["forward", "--remove"] and calls[-1][:2] == ["reverse", "--remove"]
    dev_json = json.loads((tmp_path / "andr" / "device.json").read_text())
    assert dev_json["delegate"] == "litert.js-wasm"


def test_unknown_web_device_names():
    from devicekit.web.device import is_web_device, open_web_device

    assert is_web_device("chrome") and is_web_device("chrome-android:R58M") and not is_web_device("chromebook")
    with pytest.raises(UsageError):
        open_web_device("chrome-android:X", browser="/usr/bin/chromium")


@needs_web
@pytest.mark.slow
def test_bench_chrome_webgpu_on_swiftshader(tiny, tmp_path):
    """--backend webgpu: headless Chromium offers SwiftShader's CPU adapter with --enable-unsafe-webgpu (slow
    first frame: shader compilation), so the WebGPU path runs end to end here."""
    r = subprocess.run([*DK, "bench", str(tiny), "--device", "chrome", "--backend", "webgpu", "--frames", "4", "--warmup", "1",
                        "--threads", "1", "--runs-dir", str(tmp_path), "--run-id", "gpu", "--json"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((tmp_path / "gpu" / "device.json").read_text())["delegate"] == "litert.js-webgpu"
    assert json.loads(r.stdout)["summary"]["stats"]["frames"] == 4
