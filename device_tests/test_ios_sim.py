"""The iOS path (xcrun devicectl) against the SIMULATED xcrun in device_tests/sim_bin/, first on PATH."""

from __future__ import annotations

import json
import os
import plistlib
import sys
from pathlib import Path

import psutil
import pytest

from device_tests.conftest import ROOT, run_cli
from device_tests.models import tiny_mlpackage, tiny_tflite

SIM_BIN = ROOT / "device_tests" / "sim_bin"


def _device(udid, product, name, paired=True):
    return {
        "capabilities": [{"featureIdentifier": "com.apple.coredevice.feature.launchapplication", "name": "Launch Application"}],
        "connectionProperties": {
            "authenticationType": "manualPairing",
            "pairingState": "paired" if paired else "unpaired",
            "transportType": "wired",
            "tunnelState": "connected",
        },
        "deviceProperties": {
            "bootState": "booted",
            "developerModeStatus": "enabled",
            "name": name,
            "osBuildUpdate": "21E236",
            "osVersionNumber": "17.4",
        },
        "hardwareProperties": {
            "cpuType": {"name": "arm64e"},
            "deviceType": "iPhone",
            "marketingName": name,
            "platform": "iOS",
            "productType": product,
            "udid": udid,
        },
        "identifier": f"SIM-{udid[-8:]}",
        "visibilityClass": "default",
    }


@pytest.fixture
def ios_env(tmp_path, home):  # home: isolated HOME and adb server port (killed afterwards)
    state = tmp_path / "xcrun-state"
    state.mkdir()
    st = {
        "devices": [
            _device("00008120-000A11112222333E", "iPhone15,2", "Test iPhone 14 Pro"),
            _device("00008130-000B44445555666F", "iPhone16,1", "Locked iPhone", paired=False),
        ],
        "apps": {},
        "standInTflite": str(tiny_tflite()),
    }
    (state / "state.json").write_text(json.dumps(st))
    env = {
        "PATH": f"{SIM_BIN}{os.pathsep}{os.environ['PATH']}",
        "DEVICEKIT_SIM_XCRUN_STATE": str(state),
        "DEVICEKIT_ADB": "direct",
        "DEVICEKIT_ADB_HOSTS": "",
        "DEVICEKIT_SIM_PYTHON": sys.executable,
    }
    yield env, state
    pids = json.loads((state / "state.json").read_text()).get("pids", [])
    alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"simulated app processes left behind: {alive}"


def _app(tmp_path) -> Path:
    app = tmp_path / "DevicekitBench.app"
    app.mkdir()
    (app / "Info.plist").write_bytes(plistlib.dumps({"CFBundleIdentifier": "com.devicekit.bench"}))
    return app


def test_devices_lists_ios(ios_env):
    env, _ = ios_env
    r = run_cli("devices", "--json", env_extra=env)
    assert r.returncode == 0, r.stderr
    devs = {d["id"]: d for d in json.loads(r.stdout)["devices"]}
    d = devs["00008120-000A11112222333E"]
    assert (d["platform"], d["profile"], d["os"], d["state"], d["soc"]) == ("ios", "iphone14pro", "ios 17.4", "device", "A16 Bionic")
    assert devs["00008130-000B44445555666F"]["state"] == "unauthorized"


@pytest.fixture(scope="module")
def mlpackage():
    return tiny_mlpackage()


def test_bench_iphone_profile_with_app(ios_env, mlpackage, tmp_path):
    env, state = ios_env
    r = run_cli(
        "bench",
        str(mlpackage),
        "--device",
        "iphone14pro",
        "--app",
        str(_app(tmp_path)),
        "--frames",
        "25",
        "--warmup",
        "2",
        "--delegate",
        "cpu",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--run-id",
        "ios1",
        "--json",
        env_extra=env,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["complete"] and out["summary"]["stats"]["frames"] == 25 and out["summary"]["app"] == "installed"
    dev = json.loads((tmp_path / "runs/ios1/device.json").read_text())
    assert dev["model"] == "iPhone15,2" and dev["manufacturer"] == "Apple"
    pushed = state / "devices/00008120-000A11112222333E/containers/com.devicekit.bench/Documents/devicekit/ios1/model.mlpackage"
    assert (pushed / "Manifest.json").read_bytes() == (mlpackage / "Manifest.json").read_bytes()


def test_ios_without_app_or_xcode_is_one_clear_message(ios_env, model, mlpackage, tmp_path):
    env, _ = ios_env
    r = run_cli("bench", str(model), "--device", "iphone14pro", env_extra=env)
    assert r.returncode == 2 and "ios benchmarks run .mlpackage or .mlmodelc" in r.stderr
    r = run_cli("bench", str(mlpackage), "--device", "00008120-000A11112222333E", "--runs-dir", str(tmp_path / "runs"), env_extra=env)
    assert r.returncode == 3
    msg = " ".join(r.stderr.split())
    assert "Xcode" in msg and "--app" in msg and "Traceback" not in msg
    r = run_cli("bench", str(mlpackage), "--device", "Test iPhone 14 Pro", env_extra=env)  # by name (protocol)
    assert r.returncode == 3 and "Xcode" in r.stderr
    r = run_cli("bench", str(mlpackage), "--device", "iphone15pro", env_extra=env)
    assert r.returncode == 3 and "unauthorized" in r.stderr


def test_ios_golden_and_compute_units(ios_env, tmp_path):
    """--golden and --compute-units reach the simulated iPhone (DEVICEKIT_GOLDEN, DEVICEKIT_COMPUTE_UNITS); the pushed
    .mlpackage runs on golden_input.bin in devicekit's MIL reference interpreter (CoreML itself needs iOS)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from test_package_models import make_mlpackage

    env, state = ios_env
    pkg = make_mlpackage(tmp_path / "ml", "graynet", (1, 1, 80, 72), 5, "gray", (0.0,), (255.0,))
    r = run_cli(
        "bench",
        str(pkg),
        "--device",
        "iphone14pro",
        "--app",
        str(_app(tmp_path)),
        "--frames",
        "10",
        "--golden",
        "--compute-units",
        "cpuAndNeuralEngine",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--run-id",
        "ig",
        "--json",
        env_extra=env,
    )
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)["summary"]
    assert s["golden"]["passed"] and s["golden"]["landmarks_px_mean"] == 0.0 and s["settings"]["compute_units"] == "cpuAndNeuralEngine"
    rd = state / "devices/00008120-000A11112222333E/containers/com.devicekit.bench/Documents/devicekit/ig"
    assert (rd / "golden.json").exists() and (rd / "golden_result.json").exists()
    r = run_cli("bench", str(tiny_tflite()), "--device", "host", "--compute-units", "all", env_extra=env)
    assert r.returncode == 2 and "--compute-units applies to iOS" in r.stderr
