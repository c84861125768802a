"""devicekit bench / devices against the simulated phone, through adb-shell and the Debian adb client."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from device_tests.conftest import no_app_processes, run_cli
from device_tests.models import fake_apk

TRANSPORTS = ["direct", "client"]


def _connect(transport: str, phone, home: Path, adb_client_fixture=None) -> dict:
    """Environment for the CLI: which ADB path to use and where the phone listens."""
    return {"DEVICEKIT_ADB": transport, "DEVICEKIT_ADB_HOSTS": phone.address}


def _keys_for(transport: str, request) -> list[Path]:
    """The host's public key, so the phone accepts the RSA signature (no 'Allow' prompt needed)."""
    home = Path(os.environ["HOME"])
    if transport == "client":
        request.getfixturevalue("adb_client")  # starts the server, which makes ~/.android/adbkey
    else:
        from devicekit.device.adb import load_signer

        load_signer()
    return [home / ".android" / "adbkey.pub"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_bench_pixel7_by_profile(transport, request, phone_factory, model, tmp_path):
    phone = phone_factory(model="Pixel 7", adb_keys=_keys_for(transport, request), accept_new_keys=False)
    env = _connect(transport, phone, tmp_path)
    r = run_cli(
        "bench",
        str(model),
        "--device",
        "pixel7",
        "--frames",
        "40",
        "--warmup",
        "3",
        "--threads",
        "2",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--run-id",
        "sim1",
        "--json",
        env_extra=env,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["complete"] and out["summary"]["stats"]["frames"] == 40
    run = tmp_path / "runs" / "sim1"
    rows = (run / "frames.csv").read_text().splitlines()
    assert rows[0] == "frame,start_ns,preprocess_us,inference_us,postprocess_us,total_us" and len(rows) == 41
    dev = json.loads((run / "device.json").read_text())
    assert dev["model"] == "Pixel 7" and dev["protocol"] == 2 and dev["threads"] == 2
    assert (dev["runtime"].startswith("litert 2."), dev["build_type"], dev["accelerator"]) == (True, "release", "cpu")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["profile"] == "pixel7" and summary["transport"] == ("adb" if transport == "client" else "adb-shell")
    assert summary["stats"]["thermal"]["start"] == 0
    # the protocol's commands, as the phone saw them
    log = "\n".join(phone.log)
    assert "getprop ro.product.model" in log and "dumpsys thermalservice" in log and "pm path com.devicekit.bench" in log
    assert "am start -W -S -n com.devicekit.bench/.DevicekitBenchmarkActivity --es devicekit.run sim1 --ei devicekit.frames 40" in log
    assert (phone.root / "sdcard/Android/data/com.devicekit.bench/files/devicekit/sim1/model.tflite").read_bytes() == model.read_bytes()
    rep = run_cli("report", str(run), "-o", str(tmp_path / "r.html"))
    assert rep.returncode == 0, rep.stderr
    html = (tmp_path / "r.html").read_text()
    assert html.count("<svg") == 3 and "Pixel 7" in html


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_devices_lists_model_os_soc(transport, request, phone_factory, tmp_path):
    phone = phone_factory(model="SM-S911B", adb_keys=_keys_for(transport, request), accept_new_keys=False)
    r = run_cli("devices", "--json", env_extra=_connect(transport, phone, tmp_path))
    assert r.returncode == 0, r.stderr
    devs = {d["id"]: d for d in json.loads(r.stdout)["devices"]}
    d = devs[phone.address]
    assert (d["model"], d["profile"], d["os"], d["soc"], d["state"]) == ("SM-S911B", "galaxy-s23", "android 14", "SM8550", "device")
    assert "host" in devs


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_unauthorized_key(transport, request, phone_factory, model, tmp_path):
    if transport == "client":
        request.getfixturevalue("adb_client")
    phone = phone_factory(faults=("unauthorized",))
    env = dict(_connect(transport, phone, tmp_path), DEVICEKIT_ADB_AUTH_TIMEOUT="2")
    r = run_cli("devices", "--json", env_extra=env, timeout=120)
    assert r.returncode == 0, r.stderr
    d = {d["id"]: d for d in json.loads(r.stdout)["devices"]}[phone.address]
    assert d["state"] == "unauthorized"
    r = run_cli("bench", str(model), "--device", "pixel7", "--runs-dir", str(tmp_path / "runs"), env_extra=env, timeout=120)
    assert r.returncode == 3
    assert "unauthorized" in r.stderr and "Traceback" not in r.stderr


def _bench_fault(fault: str | tuple, phone_factory, model, tmp_path, transport="direct", frames=60, timeout="4", **kw):
    phone = phone_factory(faults=(fault,) if isinstance(fault, str) else fault, **kw)
    env = _connect(transport, phone, tmp_path)
    r = run_cli(
        "bench",
        str(model),
        "--device",
        phone.address,
        "--frames",
        str(frames),
        "--warmup",
        "2",
        "--timeout",
        timeout,
        "--runs-dir",
        str(tmp_path / "runs"),
        "--run-id",
        "f1",
        env_extra=env,
    )
    run = tmp_path / "runs" / "f1"
    summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").exists() else None
    return phone, r, summary, run


def _assert_kept(r, summary, run, words, min_frames, app_stopped=True):
    assert r.returncode == 3, (r.returncode, r.stderr)
    msg = " ".join(r.stderr.split())
    assert all(w in msg for w in words), msg
    assert "Traceback" not in r.stderr and "measured frames kept" in msg
    assert summary is not None and summary["complete"] is False and summary["error"]
    rows = (run / "frames.csv").read_text().splitlines()[1:]
    assert len(rows) >= min_frames and summary["stats"]["frames"] == len(rows)
    if app_stopped:
        assert no_app_processes()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_fault_app_crash(transport, request, phone_factory, model, tmp_path):
    if transport == "client":
        request.getfixturevalue("adb_client")
    phone, r, summary, run = _bench_fault("crash", phone_factory, model, tmp_path, transport)
    _assert_kept(r, summary, run, ["timeout", "no done.json", "crashed"], min_frames=15)
    assert any(line.startswith("am force-stop com.devicekit.bench") for line in phone.log)


def test_fault_app_error(phone_factory, model, tmp_path):
    phone, r, summary, run = _bench_fault("app-error", phone_factory, model, tmp_path)
    _assert_kept(r, summary, run, ["app reported an error", "fault app-error"], min_frames=15)


def test_fault_timeout_force_stops(phone_factory, model, tmp_path):
    phone, r, summary, run = _bench_fault("timeout", phone_factory, model, tmp_path, timeout="3")
    _assert_kept(r, summary, run, ["timeout", "force-stopped"], min_frames=15)
    assert not phone.children  # am force-stop ended the hung app


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_fault_connection_dropped(transport, request, phone_factory, model, tmp_path):
    if transport == "client":
        request.getfixturevalue("adb_client")
    phone, r, summary, run = _bench_fault(
        ("drop", "slow"), phone_factory, model, tmp_path, transport, frames=300, timeout="60", slow_ms=15.0, drop_after=20
    )
    # slow frames make the run long enough to drop mid-way; the frames pulled before the drop stay
    assert phone.dropped
    # a phone that went away may still run the app (nobody can reach it to stop it) ...
    _assert_kept(r, summary, run, ["device fault", "connection lost"], min_frames=1, app_stopped=False)
    phone.stop()  # ... until the phone itself ends it; devicekit left nothing running on the host
    assert no_app_processes()


def test_fault_slow_frames_show_as_jank(phone_factory, model, tmp_path):
    phone = phone_factory(faults=("slow",), slow_ms=40.0)
    r = run_cli(
        "bench",
        str(model),
        "--device",
        phone.address,
        "--frames",
        "12",
        "--warmup",
        "1",
        "--json",
        "--runs-dir",
        str(tmp_path / "runs"),
        env_extra=_connect("direct", phone, tmp_path),
    )
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)["summary"]["stats"]
    assert s["jank"]["33.3ms"]["frames"] == 12 and s["p50_ms"] > 40 and s["fps"] < 25


def test_apk_installed_when_missing_and_sdk_missing_message(phone_factory, model, tmp_path):
    phone = phone_factory(installed=())
    env = dict(_connect("direct", phone, tmp_path), ANDROID_HOME="", ANDROID_SDK_ROOT="")
    r = run_cli("bench", str(model), "--device", phone.address, "--runs-dir", str(tmp_path / "runs"), env_extra=env)
    assert r.returncode == 3
    msg = " ".join(r.stderr.split())
    assert "no Android SDK" in msg and "ANDROID_HOME" in msg and "--apk" in msg and "Traceback" not in msg
    apk = fake_apk(tmp_path / "bench.apk")
    r = run_cli(
        "bench",
        str(model),
        "--device",
        phone.address,
        "--apk",
        str(apk),
        "--frames",
        "10",
        "--json",
        "--runs-dir",
        str(tmp_path / "runs"),
        env_extra=env,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["summary"]["app"] == "installed"
    assert "com.devicekit.bench" in phone.installed
    assert any(line.startswith("pm install -r -t /data/local/tmp/devicekit-") for line in phone.log)


def test_unknown_and_absent_devices_are_clear(phone_factory, model, tmp_path):
    phone = phone_factory(model="Pixel 7")
    env = _connect("direct", phone, tmp_path)
    r = run_cli("bench", str(model), "--device", "pixel9pro", env_extra=env)
    assert r.returncode == 3 and "no Pixel 9 Pro" in r.stderr and phone.address in r.stderr
    r = run_cli("bench", str(model), "--device", "pixle7", env_extra=env)
    assert r.returncode == 3 and "did you mean pixel7" in " ".join(r.stderr.split())
    r = run_cli("bench", str(model), "--device", "127.0.0.1:1", env_extra=env)
    assert r.returncode == 3 and "cannot connect" in r.stderr
    from device_tests.models import tiny_onnx

    r = run_cli("bench", str(tiny_onnx()), "--device", phone.address, env_extra=env)
    assert r.returncode == 2 and "android benchmarks run .tflite" in r.stderr


def test_interrupted_run_keeps_frames_and_stops_the_app(phone_factory, model, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from device_tests.conftest import ROOT

    phone = phone_factory(faults=("slow",), slow_ms=20.0)
    env = dict(os.environ, DEVICEKIT_ADB="direct", PYTHONPATH=str(ROOT))
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devicekit",
            "bench",
            str(model),
            "--device",
            phone.address,
            "--frames",
            "2000",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--run-id",
            "i1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(ROOT),
        # a background shell starts its jobs with SIGINT ignored, and Python then never raises
        # KeyboardInterrupt: give the child the default action, as a terminal's Ctrl-C would find it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.default_int_handler),
    )
    frames = phone.root / "sdcard/Android/data/com.devicekit.bench/files/devicekit/i1/frames.csv"
    deadline = time.time() + 60
    while time.time() < deadline and (not frames.exists() or len(frames.read_text().splitlines()) < 80):
        time.sleep(0.2)
    time.sleep(1.5)  # let devicekit copy the frames measured so far
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err  # SIGINT: 130, as a shell reports it
    assert "interrupted" in err and "measured frames kept" in err
    summary = json.loads((tmp_path / "runs/i1/summary.json").read_text())
    assert summary["complete"] is False and summary["stats"]["frames"] >= 40
    assert not phone.children and no_app_processes()  # am force-stop ended the app


def test_sustained_mode_on_a_phone(phone_factory, model, tmp_path):
    phone = phone_factory()
    r = run_cli(
        "bench",
        str(model),
        "--device",
        phone.address,
        "--duration",
        "1",
        "--warmup",
        "2",
        "--json",
        "--runs-dir",
        str(tmp_path / "runs"),
        env_extra={"DEVICEKIT_ADB": "direct"},
    )
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)["summary"]
    assert s["settings"]["frames"] > 30 and s["stats"]["frames"] == s["settings"]["frames"]
    span = s["stats"]["frames"] / s["stats"]["fps"]
    assert 0.3 < span < 5


def test_documented_start_command_with_adb_client(adb_client, model, tmp_path):
    """`python -m device_tests.simphone --port P --model "Pixel 7"`, then `adb connect` and `--device pixel7`."""
    import signal
    import subprocess
    import sys

    import psutil

    from device_tests.conftest import ROOT, free_port

    port = free_port()
    keys = Path(os.environ["HOME"]) / ".android" / "adbkey.pub"
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "device_tests.simphone",
            "--port",
            str(port),
            "--model",
            "Pixel 7",
            "--root",
            str(tmp_path / "phone"),
            "--adb-keys",
            str(keys),
            "--no-accept-new-keys",
        ],
        cwd=str(ROOT),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert "listening on 127.0.0.1:%d" % port in sim.stdout.readline()
        c = adb_client("connect", f"127.0.0.1:{port}")
        assert "connected to" in c.stdout
        r = run_cli(
            "bench",
            str(model),
            "--device",
            "pixel7",
            "--frames",
            "30",
            "--json",
            "--runs-dir",
            str(tmp_path / "runs"),
            env_extra={"DEVICEKIT_ADB": "client"},
        )
        assert r.returncode == 0, r.stderr
        run = json.loads(r.stdout)["dir"]
        assert json.loads(Path(run, "device.json").read_text())["model"] == "Pixel 7"
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.wait(timeout=30)
    assert sim.returncode == 0
    assert not [
        c for c in psutil.Process().children(recursive=True) if c.status() != psutil.STATUS_ZOMBIE and "device_tests.sim" in " ".join(c.cmdline())
    ]


def test_several_matching_phones_is_a_clear_error(phone_factory, model, tmp_path):
    a, b = phone_factory(model="Pixel 8"), phone_factory(model="Pixel 8")
    env = {"DEVICEKIT_ADB": "direct", "DEVICEKIT_ADB_HOSTS": f"{a.address},{b.address}"}
    r = run_cli("bench", str(model), "--device", "pixel8", env_extra=env)
    msg = " ".join(r.stderr.split())
    assert r.returncode == 3 and "several Pixel 8" in msg and a.address in msg and b.address in msg


def test_sustained_run_shows_thermal_change_and_throttling(phone_factory, model, tmp_path):
    # 10 ms frames; the simulated SoC heats up (+1 status per 0.6 s) and slows down (+2 ms per level)
    phone = phone_factory(faults=("slow",), slow_ms=10.0, thermal_rise_s=0.6)
    r = run_cli(
        "bench",
        str(model),
        "--device",
        phone.address,
        "--duration",
        "2",
        "--warmup",
        "2",
        "--json",
        "--runs-dir",
        str(tmp_path / "runs"),
        env_extra={"DEVICEKIT_ADB": "direct"},
    )
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)["summary"]
    st = s["stats"]
    assert st["thermal"]["start"] == 0 and st["thermal"]["change"] >= 2
    assert st["throttling"] is True
    assert st["over_time"][-1]["p50_ms"] > st["over_time"][0]["p50_ms"] + 1.0
    assert s["thermal_dumpsys"]["after"] >= 2


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_transient_transport_error_is_retried(transport, request, phone_factory, model, tmp_path):
    if transport == "client":
        request.getfixturevalue("adb_client")
    phone = phone_factory(faults=("flaky",))
    r = run_cli(
        "bench",
        str(model),
        "--device",
        phone.address,
        "--frames",
        "30",
        "--json",
        "--runs-dir",
        str(tmp_path / "runs"),
        env_extra=_connect(transport, phone, tmp_path),
    )
    assert r.returncode == 0, r.stderr
    assert phone.flaked and json.loads(r.stdout)["summary"]["stats"]["frames"] == 30


def test_golden_check_reports_the_error_next_to_the_latency(phone_factory, tmp_path):
    """bench --golden: golden.json + golden_input.bin pushed, `--ez devicekit.golden true`, golden_result.json judged."""
    from device_tests.models import tiny_landmark_tflite

    art = tiny_landmark_tflite(tmp_path / "m")
    phone = phone_factory()
    env = {"DEVICEKIT_ADB": "direct", "DEVICEKIT_ADB_HOSTS": phone.address}
    r = run_cli(
        "bench",
        str(art),
        "--device",
        phone.address,
        "--frames",
        "15",
        "--golden",
        "--delegate",
        "gpu",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--run-id",
        "g1",
        env_extra=env,
    )
    assert r.returncode == 0, r.stderr
    msg = " ".join(r.stderr.split())
    assert "golden check on the device: landmarks 0 px mean, 0 px max (gate rel_l2 0.0001): pass" in msg
    assert "gpu was asked for" in msg  # the simulated phone's fallback is reported, not silent
    run = tmp_path / "runs" / "g1"
    summary = json.loads((run / "summary.json").read_text())
    g = summary["golden"]
    assert g["passed"] and g["landmarks_px_mean"] == 0.0 and g["outputs"][0]["name"] == "out"
    assert json.loads((run / "golden_result.json").read_text())["protocol"] == 2
    assert summary["runtimes"]["device"].startswith("litert 2.") and summary["runtimes"]["verify"]
    on_phone = phone.root / "sdcard/Android/data/com.devicekit.bench/files/devicekit/g1"
    assert (on_phone / "golden.json").exists() and (on_phone / "golden_input.bin").stat().st_size == 64 * 64 * 3 * 4
    assert any("--ez devicekit.golden true" in line for line in phone.log)
    # a phone whose outputs drift from the reference: the run is kept, the gate fails (exit 1)
    drift = phone_factory(faults=("golden-drift",))
    r = run_cli(
        "bench",
        str(art),
        "--device",
        drift.address,
        "--frames",
        "15",
        "--golden",
        "--json",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--run-id",
        "g2",
        env_extra={"DEVICEKIT_ADB": "direct"},
    )
    assert r.returncode == 1, r.stderr
    out = json.loads(r.stdout)
    assert out["complete"] and out["summary"]["golden"]["passed"] is False
    assert "golden check on the device failed" in r.stderr and "rel_l2" in r.stderr and "Traceback" not in r.stderr
    # no manifest: --golden cannot know the reference, one clear line
    bare = tmp_path / "bare.tflite"
    bare.write_bytes(art.read_bytes())
    r = run_cli("bench", str(bare), "--device", phone.address, "--golden", env_extra=env)
    assert r.returncode == 2 and "no manifest" in r.stderr and "Traceback" not in r.stderr
