"""Headless Chromium, started and stopped by devicekit, driven over the DevTools protocol (``--remote-debugging-pipe``).

No browser download, no Node: the Debian ``chromium`` (or ``--browser PATH``)
is started in its own process group with a fresh ``--user-data-dir``, and the
whole group is ended on close, so no renderer or zygote outlives a run. The
DevTools messages go over the pipe (fd 3 in, fd 4 out, NUL-separated JSON),
so no debugging port is opened either.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from ..errors import DeviceError, EnvironmentMissing

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
# Needed on this kind of machine (root, no GPU, no network); see ENV_NOTES "The web runtime, measured here".
HEADLESS_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--mute-audio",
    "--no-default-browser-check",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
)


def find_browser(path: str | os.PathLike | None = None) -> str:
    """The Chromium/Chrome executable: ``path``, $DEVICEKIT_BROWSER, or the first of BROWSER_NAMES on PATH."""
    cand = path or os.environ.get("DEVICEKIT_BROWSER")
    if cand:
        p = Path(cand)
        if not p.is_file() or not os.access(p, os.X_OK):
            raise EnvironmentMissing(f"--browser {cand} is not an executable file")
        return str(p)
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise EnvironmentMissing(
        "no Chromium or Chrome found on PATH", hint="bash scripts/setup-system.sh (Debian: apt-get install chromium), or pass --browser PATH"
    )


def browser_version(path: str) -> str | None:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not out:
        return None
    import re

    line = out.splitlines()[-1]
    m = re.match(r"^(.*?\d+(?:\.\d+)+)", line)  # "Chromium 150.0.7871.100 built on Debian ..." -> "Chromium 150.0.7871.100"
    return m.group(1) if m else line


def chromium_args(browser: str, url: str, user_data_dir: Path, extra=(), fake_video: Path | None = None, webgpu: bool = False) -> list[str]:
    """The argument list (never a shell string)."""
    args = [browser, *HEADLESS_FLAGS, f"--user-data-dir={user_data_dir}", "--remote-debugging-pipe", "--window-size=1280,800"]
    if fake_video is not None:
        args += ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", f"--use-file-for-fake-video-capture={fake_video}"]
    if webgpu:
        args += ["--enable-unsafe-webgpu"]  # SwiftShader (CPU) adapter when there is no GPU
    return args + list(extra) + [url]


class Chromium:
    """One headless Chromium process group with a DevTools pipe; a context manager."""

    def __init__(self, url: str, browser: str | None = None, fake_video: Path | None = None, webgpu: bool = False, extra=()):
        self.browser = find_browser(browser)
        self.user_data_dir = Path(tempfile.mkdtemp(prefix="devicekit-chromium-"))
        self._ids = itertools.count(1)
        self._pending: dict[int, dict] = {}
        self._cv = threading.Condition()
        self.events: list[dict] = []
        self.session: str | None = None
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        args = chromium_args(self.browser, url, self.user_data_dir, extra, fake_video, webgpu)

        def child_fds():  # the DevTools pipe must be fds 3 (read) and 4 (write) in the browser
            r, w = os.dup(to_chrome_r), os.dup(from_chrome_w)  # out of the way of 3 and 4 first
            os.dup2(r, 3)
            os.dup2(w, 4)

        try:
            self.proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=child_fds,
                pass_fds=(3, 4),
            )
        except OSError as e:
            shutil.rmtree(self.user_data_dir, ignore_errors=True)
            raise EnvironmentMissing(f"could not start {self.browser}: {e}") from None
        finally:
            os.close(to_chrome_r)
            os.close(from_chrome_w)
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()

    # -- DevTools protocol over the pipe --
    def _read_loop(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_chrome, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cv:
                    self._cv.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                with self._cv:
                    if "id" in msg:
                        self._pending[msg["id"]] = msg
                    else:
                        self.events.append(msg)
                    self._cv.notify_all()

    def send(self, method: str, params: dict | None = None, session: str | None = "page", timeout: float = 60.0) -> dict:
        if session == "page":
            session = self.attach()
        i = next(self._ids)
        msg = {"id": i, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        try:
            os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        except OSError as e:
            raise DeviceError(f"the browser went away ({e})") from None
        deadline = time.monotonic() + timeout
        with self._cv:
            while i not in self._pending:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise DeviceError(f"no DevTools answer to {method} ({'browser exited' if self.proc.poll() is not None else 'timeout'})")
                self._cv.wait(min(left, 0.5))
            reply = self._pending.pop(i)
        if "error" in reply:
            raise DeviceError(f"DevTools {method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def attach(self) -> str:
        if self.session is None:
            deadline = time.monotonic() + 30
            while True:
                pages = [t for t in self.send("Target.getTargets", session=None)["targetInfos"] if t["type"] == "page"]
                if pages:
                    break
                if time.monotonic() > deadline:
                    raise DeviceError("the browser opened no page")
                time.sleep(0.1)
            self.session = self.send("Target.attachToTarget", {"targetId": pages[0]["targetId"], "flatten": True}, session=None)["sessionId"]
            self.send("Runtime.enable")
        return self.session

    def evaluate(self, expr: str, timeout: float = 60.0):
        """Evaluate a JS expression in the page (promises awaited); returns its JSON value."""
        r = self.send("Runtime.evaluate", {"expression": expr, "awaitPromise": True, "returnByValue": True}, timeout=timeout)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise DeviceError(f"page error: {(d.get('exception') or {}).get('description') or d.get('text')}")
        return r["result"].get("value")

    def wait_for(self, expr: str, timeout: float = 60.0, poll: float = 0.2):
        """Poll a JS expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                v = self.evaluate(expr)
            except DeviceError as e:  # the page is still navigating: no context yet
                if "execution context" not in str(e) or time.monotonic() > deadline:
                    raise
                v = None
            if v:
                return v
            if time.monotonic() > deadline:
                raise DeviceError(f"timeout after {timeout:g} s waiting for {expr!r} in the page")
            time.sleep(poll)

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)

    def console_errors(self) -> list[str]:
        with self._cv:
            evs = list(self.events)
        out = []
        for e in evs:
            if e.get("method") == "Runtime.exceptionThrown":
                d = e["params"]["exceptionDetails"]
                out.append((d.get("exception") or {}).get("description") or d.get("text", "?"))
        return out

    # -- lifetime --
    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def close(self) -> None:
        """End the whole process group (browser, renderers, zygotes), then remove the profile."""
        if getattr(self, "proc", None) is None:
            return
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
            # the leader is gone; make sure nothing else of the group is left
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            break
        for fd in (self._to_chrome, self._from_chrome):
            try:
                os.close(fd)
            except OSError:
                pass
        self._reader.join(timeout=2)
        shutil.rmtree(self.user_data_dir, ignore_errors=True)
        self.proc = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
