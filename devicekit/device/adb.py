"""ADB transports: the Debian/SDK ``adb`` client, or adb-shell straight over the protocol.

Both expose the same small surface: ``shell(argv) -> (rc, output)``,
``push``, ``pull``, ``stat``. Commands are argument lists; they are quoted
with :func:`shlex.join` for the device's shell (never a local shell).
Transient transport errors are retried with a reconnect.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

from ..errors import DeviceError, EnvironmentMissing

RETRIES = 3
_TRANSIENT = re.compile(r"device offline|closed|protocol fault|connection reset|no devices|transport|failed to connect|not found", re.I)
RC_MARK = "__devicekit_rc="
CONNECT_WAIT_S = 3.0


def adb_path() -> str | None:
    return shutil.which("adb")


def server_port() -> int:
    return int(os.environ.get("ANDROID_ADB_SERVER_PORT", "5037"))


def is_tcp_serial(serial: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9.\-]+:\d{1,5}", serial))


class AdbClient:
    """Through the ``adb`` executable (its server multiplexes USB and TCP devices)."""

    name = "adb"
    disconnect_on_close = False  # a host:port devicekit itself connected: `adb disconnect` it when done

    def __init__(self, serial: str, adb: str | None = None):
        self.serial = serial
        self.adb = adb or adb_path()
        if not self.adb:
            raise EnvironmentMissing("the adb client is not on PATH")

    def _run(self, args: list[str], timeout: float = 60.0) -> subprocess.CompletedProcess:
        last = None
        for attempt in range(RETRIES):
            try:
                r = subprocess.run([self.adb, "-s", self.serial, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                raise DeviceError(f"{self.serial}: adb {args[0]} did not answer within {timeout:.0f} s") from None
            err = (r.stderr or "").strip()
            if r.returncode != 0 and "unauthorized" in err:  # not transient: the phone waits for the user
                raise unauthorized(self.serial, err)
            if r.returncode != 0 and err.startswith(("error:", "adb: error:")) and _TRANSIENT.search(err):
                last = err
                time.sleep(0.3 * (attempt + 1))
                if is_tcp_serial(self.serial):
                    subprocess.run([self.adb, "connect", self.serial], capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
                continue
            return r
        if last and "offline" in last:
            raise offline(self.serial, last)
        raise DeviceError(f"{self.serial}: connection lost ({last})", hint="check the cable / network and `adb devices`")

    def shell(self, argv: list[str], timeout: float = 60.0) -> tuple[int, str]:
        r = self._run(["shell", shlex.join(argv)], timeout)
        return r.returncode, r.stdout

    def push(self, local: Path, remote: str) -> None:
        r = self._run(["push", str(local), remote], timeout=300)
        if r.returncode != 0:
            text = _first(r.stderr or r.stdout)
            if NO_SPACE in (r.stderr or "") + (r.stdout or ""):
                raise storage_full(self.serial, Path(local).name, NO_SPACE)
            raise DeviceError(f"{self.serial}: push {Path(local).name} -> {remote} failed ({text})")

    def pull(self, remote: str, local: Path) -> bool:
        if self.stat(remote) is None:
            return False
        r = self._run(["pull", remote, str(local)], timeout=300)
        if r.returncode != 0:
            raise DeviceError(f"{self.serial}: pull {remote} failed ({_first(r.stderr or r.stdout)})")
        return True

    def stat(self, remote: str) -> tuple[int, int, int] | None:
        """Sync STAT through the adb server's host protocol (``host:transport:<serial>`` then ``sync:``)."""
        for attempt in range(RETRIES):
            try:
                with socket.create_connection(("127.0.0.1", server_port()), timeout=10) as s:
                    _host_request(s, f"host:transport:{self.serial}")
                    _host_request(s, "sync:")
                    p = remote.encode()
                    s.sendall(b"STAT" + struct.pack("<I", len(p)) + p)
                    resp = _recv_exact(s, 16)
                    s.sendall(b"QUIT" + struct.pack("<I", 0))
                if resp[:4] != b"STAT":
                    raise DeviceError(f"{self.serial}: bad sync STAT reply {resp[:4]!r}")
                mode, size, mtime = struct.unpack("<3I", resp[4:])
                return None if mode == 0 else (mode, size, mtime)
            except (OSError, _HostError) as exc:
                last = exc
                time.sleep(0.3 * (attempt + 1))
                if is_tcp_serial(self.serial):  # a TCP device that reset: ask the server to reconnect
                    subprocess.run([self.adb, "connect", self.serial], capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
        raise DeviceError(f"{self.serial}: connection lost ({last})", hint="check `adb devices`")

    def close(self) -> None:
        if self.disconnect_on_close:
            self.disconnect_on_close = False
            client_disconnect(self.serial, self.adb)


class _HostError(Exception):
    pass


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise _HostError("adb server closed the connection")
        buf += chunk
    return buf


def _host_request(s: socket.socket, req: str) -> None:
    data = req.encode()
    s.sendall(b"%04x" % len(data) + data)
    status = _recv_exact(s, 4)
    if status != b"OKAY":
        length = int(_recv_exact(s, 4), 16)
        raise _HostError(_recv_exact(s, length).decode(errors="replace"))


def client_devices(adb: str | None = None) -> list[tuple[str, str, dict]]:
    """``adb devices -l`` -> [(serial, state, {model, product, device, transport_id})]."""
    adb = adb or adb_path()
    try:
        r = subprocess.run([adb, "devices", "-l"], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DeviceError(f"adb devices failed ({exc})") from None
    out = []
    for line in r.stdout.splitlines():
        if not line.strip() or line.startswith(("List of devices", "*")):
            continue
        parts = line.split()
        if len(parts) < 2:
            continue
        props = dict(p.split(":", 1) for p in parts[2:] if ":" in p)
        out.append((parts[0], parts[1], props))
    return out


NO_SPACE = "No space left on device"


def unauthorized(serial: str, detail: str) -> DeviceError:
    return DeviceError(f"{serial}: unauthorized ({_first(detail)})", hint="accept the USB debugging prompt on the phone")


def offline(serial: str, detail: str) -> DeviceError:
    return DeviceError(
        f"{serial}: offline: the connection opens but the phone's adbd does not answer ({_first(detail)})",
        hint="unlock the phone, reconnect the cable or toggle USB/wireless debugging, then `adb devices`",
    )


def storage_full(serial: str, what: str, detail: str) -> DeviceError:
    return DeviceError(
        f"{serial}: the phone's storage is full ({NO_SPACE} while pushing {what}: {_first(detail)})", hint="free space on the phone, then run again"
    )


def _client_state(serial: str, adb: str) -> str | None:
    return next((st for sr, st, _ in client_devices(adb) if sr == serial), None)


def client_disconnect(serial: str, adb: str | None = None) -> None:
    try:
        subprocess.run([adb or adb_path(), "disconnect", serial], capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        pass  # the device or the server is gone already: nothing left to disconnect


def client_connect(serial: str, adb: str | None = None) -> bool:
    """``adb connect`` and check the phone answers; True when this call made the connection (not "already")."""
    adb = adb or adb_path()
    r = subprocess.run([adb, "connect", serial], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    text = (r.stdout + r.stderr).strip()
    state = _client_state(serial, adb) if "connected to" in text or "failed to connect" in text else None
    if state == "unauthorized":  # "already connected to" a phone still waiting for the prompt, or a refused key
        raise unauthorized(serial, text)
    if state == "offline":
        raise offline(serial, text)
    if "authenticate" in text or "unauthorized" in text:
        # the phone may still accept the key (the user taps "Allow"): watch the state for a moment
        state = "unauthorized"
        for _ in range(int(CONNECT_WAIT_S / 0.25)):
            state = next((st for sr, st, _ in client_devices(adb) if sr == serial), "offline")
            if state == "device":
                return "already" not in text
            time.sleep(0.25)
        if state == "unauthorized":
            raise DeviceError(f"{serial}: unauthorized ({_first(text)})", hint="accept the USB debugging prompt on the phone")
        raise DeviceError(f"adb connect {serial}: device is {state}")
    if r.returncode != 0 or "connected to" not in text:
        raise DeviceError(f"adb connect {serial} failed ({_first(text)})", hint="is the device listening (adb tcpip 5555)?")
    return "already" not in text


# --- adb-shell, straight over the protocol ---------------------------------------------------


def default_key_path() -> Path:
    return Path(os.environ.get("ADB_VENDOR_KEYS_DIR") or Path.home() / ".android") / "adbkey"


_KEY_LOCK = threading.Lock()  # a fleet opens its phones from several threads: one of them makes the key


def load_signer(key: Path | None = None):
    """The adb client's own key (~/.android/adbkey), made with adb-shell's keygen when absent."""
    from adb_shell.auth.keygen import keygen
    from adb_shell.auth.sign_pythonrsa import PythonRSASigner

    key = Path(key) if key else default_key_path()
    with _KEY_LOCK:
        if not key.exists():
            key.parent.mkdir(parents=True, exist_ok=True)
            keygen(str(key))
        if not Path(str(key) + ".pub").exists():
            from adb_shell.auth.keygen import write_public_keyfile

            write_public_keyfile(str(key), str(key) + ".pub")
    return PythonRSASigner.FromRSAKeyPath(str(key))


class AdbShellDirect:
    """adb-shell: AdbDeviceTcp for ``host:port``, AdbDeviceUsb for a USB serial (needs libusb1)."""

    name = "adb-shell"

    def __init__(self, serial: str, key: Path | None = None, auth_timeout_s: float | None = None):
        self.serial = serial
        self.signer = load_signer(key)
        # how long to wait for the user to accept the debugging prompt
        self.auth_timeout_s = auth_timeout_s or float(os.environ.get("DEVICEKIT_ADB_AUTH_TIMEOUT", "10"))
        self.dev = None
        self._connect()

    def _make(self):
        from adb_shell.adb_device import AdbDeviceTcp

        if is_tcp_serial(self.serial):
            host, port = self.serial.rsplit(":", 1)
            return AdbDeviceTcp(host, int(port), default_transport_timeout_s=10.0)
        try:
            from adb_shell.adb_device import AdbDeviceUsb

            return AdbDeviceUsb(serial=self.serial, default_transport_timeout_s=10.0)
        except Exception as exc:  # noqa: BLE001 - adb-shell raises a generic error without libusb1
            raise EnvironmentMissing(
                f"USB device {self.serial} needs the adb client or adb-shell's USB extra ({exc})",
                hint="install Android platform-tools (adb), or pip install 'adb-shell[usb]'",
            ) from None

    def _connect(self) -> None:
        from adb_shell.exceptions import DeviceAuthError

        self.close()
        dev = self._make()
        try:
            dev.connect(rsa_keys=[self.signer], auth_timeout_s=self.auth_timeout_s)
        except DeviceAuthError as exc:
            dev.close()
            raise unauthorized(self.serial, str(exc)) from None
        except (OSError, Exception) as exc:  # noqa: BLE001 - transport and protocol errors
            dev.close()
            msg = str(exc) or type(exc).__name__
            if "auth" in type(exc).__name__.lower() or isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__:
                # adb-shell times out the same way whether the phone refuses the key or never answers: ask once
                reply = handshake_reply(self.serial) if is_tcp_serial(self.serial) else b"AUTH"
                if reply is None:
                    raise offline(self.serial, msg) from None
                raise unauthorized(self.serial, msg) from None
            raise DeviceError(f"{self.serial}: cannot connect ({msg})", hint="is the device listening (adb tcpip 5555)?") from None
        self.dev = dev

    def _retry(self, what: str, fn):
        last = None
        for attempt in range(RETRIES):
            try:
                if self.dev is None:
                    self._connect()
                return fn()
            except DeviceError as exc:
                if "storage is full" in exc.message:  # retrying cannot help
                    raise
                last = exc.message
            except Exception as exc:  # noqa: BLE001 - adb-shell's transport errors vary by transport
                if isinstance(exc, (FileNotFoundError,)):
                    raise
                last = f"{type(exc).__name__}: {exc}"
            self.close()
            time.sleep(0.3 * (attempt + 1))
        raise DeviceError(f"{self.serial}: connection lost during {what} ({last})", hint="check the device and the network")

    def shell(self, argv: list[str], timeout: float = 60.0) -> tuple[int, str]:
        # adb-shell speaks shell v1 (no exit status): ask the device's shell to print it.
        cmd = shlex.join(argv) + f"; echo {RC_MARK}$?"
        out = self._retry(argv[0], lambda: self.dev.shell(cmd, timeout_s=timeout, read_timeout_s=timeout))
        m = re.search(re.escape(RC_MARK) + r"(\d+)\s*$", out)
        if not m:
            raise DeviceError(f"{self.serial}: {argv[0]} returned no exit status (output {out[-80:]!r})")
        return int(m.group(1)), out[: m.start()]

    def push(self, local: Path, remote: str) -> None:
        def push():
            try:
                self.dev.push(str(local), remote)
            except Exception as exc:  # noqa: BLE001 - adb-shell's PushFailedError carries adbd's FAIL message
                if NO_SPACE in str(exc):
                    raise storage_full(self.serial, Path(local).name, NO_SPACE) from None
                raise

        self._retry("push", push)

    def pull(self, remote: str, local: Path) -> bool:
        if self.stat(remote) is None:
            return False
        self._retry("pull", lambda: self.dev.pull(remote, str(local)))
        return True

    def stat(self, remote: str) -> tuple[int, int, int] | None:
        mode, size, mtime = self._retry("stat", lambda: self.dev.stat(remote))
        return None if mode == 0 else (mode, size, mtime)

    def close(self) -> None:
        if self.dev is not None:
            try:
                self.dev.close()
            except Exception:  # noqa: BLE001 - closing a dead socket
                pass
            self.dev = None


def handshake_reply(serial: str, timeout: float = 3.0) -> bytes | None:
    """The command of the first packet a TCP device sends back to a CNXN (b"AUTH" when it wants a key, b"CNXN"
    when it lets the host in), or None when nothing answers: what tells "unauthorized" from "offline"."""
    from adb_shell import constants
    from adb_shell.adb_message import AdbMessage

    host, port = serial.rsplit(":", 1)
    msg = AdbMessage(constants.CNXN, constants.VERSION, constants.MAX_ADB_DATA, b"host::devicekit\0")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as s:
            s.sendall(msg.pack() + msg.data)
            head = _recv_exact(s, 24)
    except (OSError, _HostError):
        return None
    return head[:4]


def _first(text: str) -> str:
    lines = [ln for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "no output"
