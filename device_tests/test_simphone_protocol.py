"""The simulated phone speaks the ADB wire protocol well enough for both real clients."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _signer():
    from devicekit.device.adb import load_signer

    return load_signer()


def test_adb_shell_auth_shell_sync_roundtrip(phone_factory, tmp_path):
    from adb_shell.adb_device import AdbDeviceTcp

    signer = _signer()
    phone = phone_factory(adb_keys=[Path(os.environ["HOME"]) / ".android/adbkey.pub"], accept_new_keys=False)
    dev = AdbDeviceTcp("127.0.0.1", phone.port, default_transport_timeout_s=10)
    assert dev.connect(rsa_keys=[signer], auth_timeout_s=5)  # accepted by RSA signature, no prompt
    try:
        assert dev.shell("getprop ro.product.model").strip() == "Pixel 7"
        assert "__devicekit_rc=127" in dev.shell("frobnicate; echo __devicekit_rc=$?")
        data = os.urandom(300_000)  # several sync DATA chunks and WRTE packets
        src = tmp_path / "blob.bin"
        src.write_bytes(data)
        dev.push(str(src), "/sdcard/x/blob.bin")
        mode, size, _ = dev.stat("/sdcard/x/blob.bin")
        assert size == len(data) and mode & 0o100000
        names = [bytes(e.filename).decode() for e in dev.list("/sdcard/x")]
        assert "blob.bin" in names
        dev.pull("/sdcard/x/blob.bin", str(tmp_path / "back.bin"))
        assert (tmp_path / "back.bin").read_bytes() == data
        assert dev.stat("/sdcard/nope")[0] == 0
    finally:
        dev.close()


def test_adb_shell_unknown_key_refused(phone_factory):
    from adb_shell.adb_device import AdbDeviceTcp

    signer = _signer()
    phone = phone_factory(accept_new_keys=False)  # no authorized keys, no "Allow"
    dev = AdbDeviceTcp("127.0.0.1", phone.port, default_transport_timeout_s=2)
    with pytest.raises(Exception):
        dev.connect(rsa_keys=[signer], auth_timeout_s=1)
    dev.close()


def test_debian_adb_client_shell_v2_and_sync(adb_client, phone_factory, tmp_path):
    keys = Path(os.environ["HOME"]) / ".android/adbkey.pub"
    phone = phone_factory(model="Pixel 6", adb_keys=[keys], accept_new_keys=False)
    serial = phone.address
    assert "connected to" in adb_client("connect", serial).stdout
    devices = adb_client("devices", "-l").stdout
    assert f"{serial}" in devices and "model:Pixel_6" in devices and " device " in devices
    r = adb_client("-s", serial, "shell", "getprop", "ro.product.model")
    assert (r.returncode, r.stdout.strip()) == (0, "Pixel 6")
    r = adb_client("-s", serial, "shell", "frobnicate")
    assert r.returncode == 127 and "not found" in r.stderr  # exit code and stderr through shell v2
    data = os.urandom(700_000)
    (tmp_path / "in.bin").write_bytes(data)
    assert adb_client("-s", serial, "push", str(tmp_path / "in.bin"), "/sdcard/t/in.bin").returncode == 0
    assert (phone.root / "sdcard/t/in.bin").read_bytes() == data
    assert adb_client("-s", serial, "pull", "/sdcard/t/in.bin", str(tmp_path / "out.bin")).returncode == 0
    assert (tmp_path / "out.bin").read_bytes() == data
    r = adb_client("-s", serial, "pull", "/sdcard/t/missing", str(tmp_path / "m"))
    assert r.returncode != 0 and "does not exist" in r.stdout + r.stderr
