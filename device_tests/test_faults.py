"""The device fault matrix (issue 17): each fault's message, exit code, the frames kept, and no process left.

Against the simulated phone (device_tests/simphone.py, the real ADB wire protocol), through the Debian adb
client and adb-shell. Faults already covered one by one in test_android_sim.py (app crash, app error, slow
frames, timeout, connection dropped mid-run, Ctrl-C) are checked there with the same assertions; this file adds
the ones that were missing: an unauthorized phone addressed by host:port on both transports, an offline phone,
full storage, and ``kill -9`` of devicekit itself mid-run (on a phone and on the host).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from device_tests.conftest import ROOT, no_app_processes, run_cli
from tests.cli_run import one_line_error

TRANSPORTS = ["direct", "client"]


def no_devicekit_processes(marker: str) -> bool:
    """Nothing devicekit started is still running: no devicekit process (the CLI, its LiteRT probe or format
    checker children) whose command line names this test's files."""
    left = []
    for p in psutil.process_iter(["cmdline", "status"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            if p.info["status"] != psutil.STATUS_ZOMBIE and marker in cmd and "-m devicekit" in cmd:
                left.append(p)
        except psutil.Error:
            pass
    return not left


def gone(procs: list) -> bool:
    """Every one of these processes has ended (killed with their parent, or finished)."""
    time.sleep(0.5)
    return not [c for c in procs if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]


def _env(transport: str, address: str, **extra) -> dict:
    return {"DEVICEKIT_ADB": transport, "DEVICEKIT_ADB_HOSTS": address, **extra}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_unauthorized_phone_by_address(transport, request, phone_factory, model, tmp_path):
    """`--device 127.0.0.1:P` of a phone that never accepts the key said "... with --apk FILE (build it where the
    SDK is ...)" through the adb client: it now says unauthorized and what to do, on both transports."""
    phone = phone_factory(faults=("unauthorized",))
    if transport == "client":  # the adb server already holds the connection: `adb devices` lists it unauthorized
        adb = request.getfixturevalue("adb_client")
        adb("connect", phone.address)
        assert f"{phone.address}\tunauthorized" in adb("devices").stdout
    env = _env(transport, phone.address, DEVICEKIT_ADB_AUTH_TIMEOUT="2", ANDROID_HOME="", ANDROID_SDK_ROOT="")
    r = run_cli("bench", str(model), "--device", phone.address, "--runs-dir", str(tmp_path / "runs"), env_extra=env, timeout=120)
    msg = one_line_error(r, 3, "unauthorized", "accept the USB debugging prompt on the phone")
    assert "--apk" not in msg and "SDK" not in msg
    assert not (tmp_path / "runs").exists() and no_app_processes() and no_devicekit_processes(str(tmp_path))


class OfflinePhone:
    """A phone whose adbd is not answering: TCP connects, the ADB handshake never comes (what `adb devices`
    lists as ``offline``). Nothing more to simulate: an offline device says nothing."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_offline_phone(transport, request, home, model, tmp_path):
    if transport == "client":
        request.getfixturevalue("adb_client")
    phone = OfflinePhone()
    try:
        env = _env(transport, phone.address, DEVICEKIT_ADB_AUTH_TIMEOUT="2")
        r = run_cli("bench", str(model), "--device", phone.address, "--runs-dir", str(tmp_path / "runs"), env_extra=env, timeout=120)
        one_line_error(r, 3, phone.address, "offline")
    finally:
        phone.close()
    assert not (tmp_path / "runs").exists() and no_devicekit_processes(str(tmp_path))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_storage_full(transport, request, phone_factory, model, tmp_path, monkeypatch):
    """The phone's storage is full: adbd answers the model's push with FAIL "No space left on device"."""
    from device_tests import simphone

    if transport == "client":
        request.getfixturevalue("adb_client")
    real = simphone._Connection._send

    def full(self, st, spec):
        if "/files/devicekit/" not in spec:
            return real(self, st, spec)
        while st.read(4) == b"DATA":  # take the data as adbd does, then fail like a full /sdcard
            st.read(int.from_bytes(st.read(4), "little"))
        st.read(4)
        self._fail(st, "No space left on device")

    monkeypatch.setattr(simphone._Connection, "_send", full)
    phone = phone_factory()
    r = run_cli(
        "bench",
        str(model),
        "--device",
        phone.address,
        "--runs-dir",
        str(tmp_path / "runs"),
        "--run-id",
        "full",
        env_extra=_env(transport, phone.address),
        timeout=120,
    )
    one_line_error(r, 3, "storage is full", "No space left on device", "free space on the phone", "0 measured frames kept")
    summary = json.loads((tmp_path / "runs/full/summary.json").read_text())
    assert summary["complete"] is False and "storage is full" in summary["error"] and summary["stats"]["frames"] == 0
    assert not phone.children and no_app_processes() and no_devicekit_processes(str(tmp_path))


def _start_bench(model: Path, device: str, runs: Path, run_id: str, env_extra: dict, ctrl_c: bool = False) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), **env_extra)
    # a background shell starts jobs with SIGINT ignored: give the child the default action, as a terminal would
    pre = (lambda: signal.signal(signal.SIGINT, signal.default_int_handler)) if ctrl_c else None
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devicekit",
            "bench",
            str(model),
            "--device",
            device,
            "--frames",
            "100000",
            "--runs-dir",
            str(runs),
            "--run-id",
            run_id,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(ROOT),
        preexec_fn=pre,
    )


def _rows(p: Path) -> int:
    try:
        return max(0, len(p.read_text().splitlines()) - 1)
    except OSError:
        return 0


def _wait_rows(run: Path, n: int, seconds: float) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline and _rows(run / "frames.csv") < n:
        time.sleep(0.1)


def _kill_9_keeps_a_reportable_run(p: subprocess.Popen, run: Path, at_least: int) -> None:
    """SIGKILL ``p`` once ``run`` has ``at_least`` frames: its children go with it, the run stays, marked
    incomplete, and `devicekit report` reads every frame frames.csv kept (the summary is rewritten every second)."""
    _wait_rows(run, at_least, 90)
    children = psutil.Process(p.pid).children(recursive=True)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    assert gone(children)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["complete"] is False and summary["error"].startswith("incomplete")
    kept = _rows(run / "frames.csv")
    assert kept >= at_least and summary["stats"]["frames"] <= kept
    rep = run_cli("report", str(run), "--format", "json")
    assert rep.returncode == 0, rep.stderr
    assert json.loads(rep.stdout)["runs"][0]["stats"]["frames"] == kept


def test_kill_9_of_devicekit_mid_run_on_a_phone(phone_factory, model, tmp_path):
    """devicekit killed while a phone runs: runs/<RUN> is already there, marked incomplete, with the frames
    copied so far; the app on the phone is not devicekit's to stop (a real phone keeps running it too)."""
    phone = phone_factory(faults=("slow",), slow_ms=10.0)
    p = _start_bench(model, phone.address, tmp_path / "runs", "k9", {"DEVICEKIT_ADB": "direct"})
    _kill_9_keeps_a_reportable_run(p, tmp_path / "runs" / "k9", 20)
    assert no_devicekit_processes(str(tmp_path))


def test_kill_9_and_ctrl_c_of_a_host_run(model, tmp_path):
    """`kill -9` of `bench --device host` after 2 s left no run directory; Ctrl-C exited 3, not 130."""
    p = _start_bench(model, "host", tmp_path / "runs", "h9", {})
    _kill_9_keeps_a_reportable_run(p, tmp_path / "runs" / "h9", 50)
    p = _start_bench(model, "host", tmp_path / "runs", "hc", {}, ctrl_c=True)
    _wait_rows(tmp_path / "runs" / "hc", 50, 90)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "interrupted" in err and "measured frames kept" in err
    s = json.loads((tmp_path / "runs/hc/summary.json").read_text())
    assert s["complete"] is False and s["stats"]["frames"] == _rows(tmp_path / "runs/hc/frames.csv") >= 50
    assert no_devicekit_processes(str(tmp_path))
