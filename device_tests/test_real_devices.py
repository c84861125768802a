"""Real phones: run only when DEVICEKIT_ANDROID_SERIAL / DEVICEKIT_IOS_UDID is set (skipped otherwise).

    DEVICEKIT_ANDROID_SERIAL=R58M123ABC [DEVICEKIT_ANDROID_APK=bench.apk] pytest device_tests/test_real_devices.py
    DEVICEKIT_IOS_UDID=00008120-... [DEVICEKIT_IOS_APP=DevicekitBench.app] pytest device_tests/test_real_devices.py

They use your real adb keys / Xcode pairing (no isolated HOME) and the benchmark
app built from mobile_templates (or the one given).
"""

from __future__ import annotations

import json
import os

import pytest

from device_tests.conftest import run_cli

SERIAL = os.environ.get("DEVICEKIT_ANDROID_SERIAL")
UDID = os.environ.get("DEVICEKIT_IOS_UDID")


def _bench(device: str, model, tmp_path, app_flag: str, app_env: str):
    extra = [app_flag, os.environ[app_env]] if os.environ.get(app_env) else []
    r = run_cli("devices", "--json", timeout=120)
    assert r.returncode == 0, r.stderr
    listed = {d["id"]: d for d in json.loads(r.stdout)["devices"]}
    assert device in listed and listed[device]["state"] == "device", listed.get(device)
    r = run_cli(
        "bench",
        str(model),
        "--device",
        device,
        "--frames",
        "50",
        "--warmup",
        "5",
        "--json",
        "--runs-dir",
        str(tmp_path / "runs"),
        *extra,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["complete"] and out["summary"]["stats"]["frames"] == 50
    rep = run_cli("report", out["dir"], "-o", str(tmp_path / "report.html"))
    assert rep.returncode == 0, rep.stderr


@pytest.mark.device
@pytest.mark.skipif(not SERIAL, reason="set DEVICEKIT_ANDROID_SERIAL to run against a real Android phone")
def test_real_android(model, tmp_path):
    _bench(SERIAL, model, tmp_path, "--apk", "DEVICEKIT_ANDROID_APK")


@pytest.mark.device
@pytest.mark.skipif(not UDID, reason="set DEVICEKIT_IOS_UDID to run against a real iPhone")
def test_real_ios(model, tmp_path):
    _bench(UDID, model, tmp_path, "--app", "DEVICEKIT_IOS_APP")
