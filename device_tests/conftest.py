"""Fixtures: a small real model, an isolated adb client environment, simulated phones."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from device_tests.models import tiny_tflite  # noqa: E402
from device_tests.simphone import SimPhone  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def model() -> Path:
    return tiny_tflite()


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An isolated HOME (its own ~/.android/adbkey) and a private adb server port."""
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("HOME", str(h))
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(free_port()))
    monkeypatch.delenv("DEVICEKIT_ADB_HOSTS", raising=False)
    monkeypatch.delenv("DEVICEKIT_ADB", raising=False)
    yield h
    if shutil.which("adb"):
        subprocess.run(["adb", "kill-server"], capture_output=True, timeout=30)
        assert _wait_adb_server_gone(os.environ["ANDROID_ADB_SERVER_PORT"]), "the adb server was left running"


def _wait_adb_server_gone(port: str) -> bool:
    import time

    for _ in range(50):
        if not any(_is_adb_server(p, port) for p in psutil.process_iter(["cmdline"])):
            return True
        time.sleep(0.1)
    return False


def _is_adb_server(p, port: str) -> bool:
    try:
        cmd = p.info.get("cmdline") or []
        return bool(cmd) and Path(cmd[0]).name == "adb" and f"tcp:{port}" in " ".join(cmd) and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@pytest.fixture
def phone_factory(tmp_path, home):
    """Start simulated phones in this process; stop them (and their app processes) afterwards."""
    phones = []

    def make(**kw) -> SimPhone:
        root = tmp_path / f"phone{len(phones)}"
        keys = kw.pop("adb_keys", None)
        p = SimPhone(root, adb_keys=keys, **kw).start()
        phones.append(p)
        return p

    yield make
    for p in phones:
        p.stop()
    assert no_app_processes(), "a simulated app process was left behind"


def no_app_processes() -> bool:
    me = psutil.Process()
    return not [c for c in me.children(recursive=True) if c.status() != psutil.STATUS_ZOMBIE and "device_tests.simapp" in " ".join(c.cmdline())]


def run_cli(*args, env_extra=None, timeout=180) -> subprocess.CompletedProcess:
    env = dict(os.environ, **(env_extra or {}))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "devicekit", *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=str(ROOT), stdin=subprocess.DEVNULL
    )


@pytest.fixture
def adb_client(home):
    """The Debian adb client with its server on the private port; skipped when adb is missing."""
    adb = shutil.which("adb")
    if not adb:
        pytest.skip("the adb client is not installed (scripts/setup-system.sh installs Debian's adb)")

    def adb_run(*args, timeout=30):
        return subprocess.run([adb, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    adb_run("start-server")
    return adb_run
