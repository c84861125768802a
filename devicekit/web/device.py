"""Browsers as devices: ``--device chrome`` (headless Chromium here) and ``--device chrome-android[:SERIAL]``.

Both serve the packaged web app (render.py) from a devicekit server on
127.0.0.1 and open its benchmark mode (``index.html?mode=bench&run=...``);
the page POSTs the protocol's frames.csv, device.json and done.json back to
the server, so the runner, ``runs/<RUN>/`` and ``devicekit report`` treat a
browser like any device.

chrome-android: the phone's Chrome reaches the server through ``adb reverse
tcp:P tcp:P`` (its 127.0.0.1:P is the host's server; 127.0.0.1 is a secure
context, so COOP/COEP isolation and WASM threads work), and devicekit drives
Chrome through ``adb forward tcp:L localabstract:chrome_devtools_remote`` and
the DevTools HTTP endpoints (``PUT /json/new?URL`` opens the page,
``/json/close/ID`` closes it).
"""

from __future__ import annotations

import json
import platform as _platform
import shutil
import socket
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ..device.base import Device, DeviceInfo, RunSpec
from ..errors import DeviceError, EnvironmentMissing, UsageError
from ..fsutil import sha256_file
from ..registry import DeviceKind, register_device_kind
from .browser import Chromium, browser_version, find_browser
from .server import WebServer

BACKENDS = ("wasm", "webgpu")
RESULT_FILES = ("frames.csv", "device.json", "done.json")
CHROME_PACKAGE = "com.android.chrome"


def is_web_device(name: str | None) -> bool:
    return bool(name) and (name == "chrome" or name == "chrome-android" or name.startswith("chrome-android:"))


def pick_backend(backend: str | None, delegate: str) -> str:
    """--backend wins; else the bench delegate: gpu -> webgpu, anything else -> wasm (XNNPACK)."""
    if backend is not None:
        if backend not in BACKENDS:
            raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        return backend
    return "webgpu" if delegate == "gpu" else "wasm"


def bench_query(spec: RunSpec, backend: str, token: str = "") -> str:
    return urllib.parse.urlencode(
        {
            "mode": "bench",
            "run": spec.run_id,
            "frames": spec.frames,
            "warmup": spec.warmup,
            "backend": backend,
            "threads": spec.threads,
            "token": token,
        }
    )


class ChromeDevice(Device):
    """Headless Chromium on this machine (``--device chrome``)."""

    def __init__(self, browser: str | None = None, backend: str | None = None):
        self.browser = find_browser(browser)
        self.backend = backend
        version = browser_version(self.browser)
        self.info = DeviceInfo(
            platform="web",
            id="chrome",
            state="device",
            model=version or Path(self.browser).name,
            name="chrome (headless)",
            manufacturer="browser",
            os=f"{_platform.system().lower()} {_platform.release()}",
            soc=_platform.machine(),
            transport="devtools-pipe",
            profile="chrome",
            extra={"browser": self.browser, "backend": backend},
        )
        self._root = Path(tempfile.mkdtemp(prefix="devicekit-web-"))
        self._results = self._root / "results"
        self._app: Path | None = None
        self._app_sha: str | None = None
        self.server: WebServer | None = None
        self._chromium: Chromium | None = None

    # -- the app and the server --
    def _serve(self, spec: RunSpec, port: int = 0) -> None:
        from ..registry import packager

        render_web = packager("web")  # devicekit.mobile_templates.webapp, attached by mobile_templates
        sha = sha256_file(spec.model)
        if self._app_sha != sha:
            app = self._root / f"app-{sha[:12]}"
            render_web(spec.model, app, force=True)
            self._app, self._app_sha = app, sha
            if self.server is not None:
                self.server.close()
                self.server = None
        if self.server is None:
            self.server = WebServer(self._app, self._results, port=port)

    def url(self, spec: RunSpec) -> str:
        token = self.server.tokens.get(spec.run_id) or self.server.expect(spec.run_id)  # uploads bound to this run
        return f"{self.server.origin}/index.html?{bench_query(spec, pick_backend(self.backend, spec.delegate), token)}"

    def _run_dir(self, spec: RunSpec) -> Path:
        return self._results / spec.run_id

    # -- Device interface --
    def push(self, local: Path, remote: str) -> None:
        dst = self._root / "pushed" / remote
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, dst)

    def pull(self, remote: str, local: Path) -> bool:
        src = self._results / remote
        if not src.is_file():
            return False
        shutil.copyfile(src, local)
        return True

    def is_installed(self, app_id: str) -> bool:
        return True  # nothing to install: the web app is rendered and served per model in prepare_run

    def install(self, app: Path) -> None:
        raise UsageError("browser runs install nothing; drop --apk/--app")

    def prepare_run(self, spec: RunSpec) -> None:
        self._serve(spec)
        self._run_dir(spec).mkdir(parents=True, exist_ok=True)

    def launch(self, spec: RunSpec) -> None:
        self.stop(spec)
        backend = pick_backend(self.backend, spec.delegate)
        self._chromium = Chromium(self.url(spec), browser=self.browser, webgpu=backend == "webgpu")

    def finished(self, spec: RunSpec) -> bool:
        if (self._run_dir(spec) / "done.json").exists():
            return True
        if self._chromium is not None and not self._chromium.alive():
            raise DeviceError(f"the browser exited before the run finished (exit code {self._chromium.returncode})")
        return False

    def collect(self, spec: RunSpec, local_dir: Path) -> None:
        local_dir.mkdir(parents=True, exist_ok=True)
        for name in RESULT_FILES:
            src = self._run_dir(spec) / name
            if src.exists():
                shutil.copyfile(src, local_dir / name)

    def progress(self, spec: RunSpec, local_dir: Path) -> None:
        """The page posts frames.csv every 2 s while it runs: keep a copy (survives the browser dying)."""
        src = self._run_dir(spec) / "frames.csv"
        if src.exists():
            local_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, local_dir / "frames.csv")

    def stop(self, spec: RunSpec | None = None) -> None:
        if self._chromium is not None:
            self._chromium.close()
            self._chromium = None

    def close(self) -> None:
        self.stop()
        if self.server is not None:
            self.server.close()
            self.server = None
        shutil.rmtree(self._root, ignore_errors=True)


# ---- Chrome on an Android phone ----


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def adb_setup_commands(adb: str, serial: str, port: int, devtools_port: int) -> list[list[str]]:
    """The adb calls (argument lists) that connect a phone's Chrome to this machine."""
    return [
        # Chrome must be running for its DevTools socket to exist
        [adb, "-s", serial, "shell", "am", "start", "-n", f"{CHROME_PACKAGE}/com.google.android.apps.chrome.Main", "-d", "about:blank"],
        [adb, "-s", serial, "reverse", f"tcp:{port}", f"tcp:{port}"],
        [adb, "-s", serial, "forward", f"tcp:{devtools_port}", "localabstract:chrome_devtools_remote"],
    ]


def adb_teardown_commands(adb: str, serial: str, port: int, devtools_port: int) -> list[list[str]]:
    return [
        [adb, "-s", serial, "forward", "--remove", f"tcp:{devtools_port}"],
        [adb, "-s", serial, "reverse", "--remove", f"tcp:{port}"],
    ]


def devtools_http(devtools_port: int, path: str, method: str = "GET", timeout: float = 10.0) -> dict | list | None:
    req = urllib.request.Request(f"http://127.0.0.1:{devtools_port}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as e:
        raise DeviceError(
            f"Chrome DevTools on 127.0.0.1:{devtools_port} did not answer {path.split('?')[0]} ({e})",
            hint="is Chrome open on the phone and USB debugging allowed?",
        ) from None
    try:
        return json.loads(body)
    except ValueError:
        return None


def wait_devtools(devtools_port: int, timeout: float = 20.0) -> dict | None:
    """/json/version once Chrome's DevTools socket answers (Chrome may still be starting)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            return devtools_http(devtools_port, "/json/version", timeout=5.0)
        except DeviceError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


class ChromeAndroidDevice(ChromeDevice):
    """Chrome on an attached Android phone (``--device chrome-android[:SERIAL]``), over adb forward/reverse + DevTools."""

    def __init__(
        self, serial: str | None = None, backend: str | None = None, adb: str | None = None, devtools_port: int | None = None, port: int | None = None
    ):
        from ..device.adb import adb_path, client_devices

        self.adb = adb or adb_path()
        if not self.adb:
            raise EnvironmentMissing("chrome-android needs the adb client (adb forward/reverse)", hint="apt-get install adb")
        if serial is None:
            attached = [s for s, state, _ in client_devices(self.adb) if state == "device"]
            if len(attached) != 1:
                raise DeviceError(
                    f"chrome-android: {'no phone is' if not attached else 'several phones are'} attached",
                    hint="connect one phone, or pass --device chrome-android:SERIAL",
                )
            serial = attached[0]
        self.serial, self.backend = serial, backend
        self.port, self.devtools_port = port or free_port(), devtools_port or free_port()
        self.info = DeviceInfo(
            platform="web",
            id=f"chrome-android:{serial}",
            state="device",
            model=None,
            name="chrome on android",
            manufacturer="browser",
            os="android",
            transport="adb+devtools",
            profile="chrome-android",
            extra={"serial": serial, "backend": backend},
        )
        self._root = Path(tempfile.mkdtemp(prefix="devicekit-web-"))
        self._results = self._root / "results"
        self._app = self._app_sha = None
        self.server = None
        self._chromium = None
        self._target: str | None = None
        self._connected = False

    def _adb(self, args: list[str]) -> None:
        r = subprocess.run(args, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise DeviceError(f"{self.serial}: `{' '.join(args[3:])}` failed: {(r.stderr or r.stdout).strip()[:200]}")

    def prepare_run(self, spec: RunSpec) -> None:
        self._serve(spec, port=self.port)
        self._run_dir(spec).mkdir(parents=True, exist_ok=True)
        if not self._connected:
            for cmd in adb_setup_commands(self.adb, self.serial, self.port, self.devtools_port):
                self._adb(cmd)
            self._connected = True
            ver = wait_devtools(self.devtools_port) or {}
            self.info.model = ver.get("Browser")

    def launch(self, spec: RunSpec) -> None:
        self.stop(spec)
        url = self.url(spec)
        tab = devtools_http(self.devtools_port, "/json/new?" + urllib.parse.quote(url, safe=""), method="PUT")
        if not isinstance(tab, dict) or "id" not in tab:
            raise DeviceError("Chrome did not open the benchmark page (DevTools /json/new)")
        self._target = tab["id"]

    def finished(self, spec: RunSpec) -> bool:
        return (self._run_dir(spec) / "done.json").exists()

    def stop(self, spec: RunSpec | None = None) -> None:
        if self._target is not None:
            try:
                devtools_http(self.devtools_port, f"/json/close/{self._target}")
            except DeviceError:
                pass
            self._target = None

    def close(self) -> None:
        try:
            self.stop()
            if self._connected:
                for cmd in adb_teardown_commands(self.adb, self.serial, self.port, self.devtools_port):
                    try:
                        self._adb(cmd)
                    except (DeviceError, OSError, subprocess.SubprocessError):
                        pass
                self._connected = False
        finally:
            super().close()


def open_web_device(name: str, browser: str | None = None, backend: str | None = None) -> Device:
    """``chrome`` or ``chrome-android[:SERIAL]`` -> a Device."""
    if backend is not None:
        pick_backend(backend, "xnnpack")  # validate
    if name == "chrome":
        return ChromeDevice(browser=browser, backend=backend)
    if name == "chrome-android" or name.startswith("chrome-android:"):
        if browser:
            raise UsageError("--browser picks a local browser; chrome-android uses the phone's Chrome")
        serial = name.split(":", 1)[1] if ":" in name else None
        return ChromeAndroidDevice(serial or None, backend=backend)
    raise UsageError(f"unknown browser device {name!r} (chrome or chrome-android[:SERIAL])")


def list_browsers() -> list[DeviceInfo]:
    """Local browsers for `devicekit devices` (the one devicekit would start)."""
    try:
        path = find_browser()
    except EnvironmentMissing:
        return []
    return [
        DeviceInfo(
            platform="web",
            id="chrome",
            state="device",
            model=browser_version(path),
            name="chrome (headless)",
            manufacturer="browser",
            transport="devtools-pipe",
            profile="chrome",
            extra={"browser": path},
        )
    ]


register_device_kind(DeviceKind("web", "web", list_browsers, is_web_device, open_web_device))
