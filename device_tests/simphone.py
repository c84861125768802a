"""A simulated Android phone that speaks the real ADB wire protocol as a *device* on 127.0.0.1.

SIMULATION, for tests: it is not a phone. It implements CNXN, AUTH (RSA keys,
verified), OPEN/OKAY/WRTE/CLSE with flow control, the ``shell:`` and
``shell,v2`` services (exit codes), and ``sync:`` (STAT/LIST/SEND/RECV/QUIT).
Its shell answers the commands of DEVICE_PROTOCOL.md (protocol 2); ``am start`` runs the
benchmark "app" (device_tests/simapp.py: the real ai_edge_litert interpreter on
the pushed model.tflite) in a child process that writes frames.csv /
device.json / done.json into the simulated /sdcard tree.

Start it:

    python -m device_tests.simphone --port 5555 --model "Pixel 7"
    adb connect 127.0.0.1:5555          # or: devicekit bench m.tflite --device 127.0.0.1:5555

Faults (``--fault NAME``, repeatable): unauthorized, drop, crash, app-error, slow, timeout.
"""

from __future__ import annotations

import argparse
import os
import queue
import secrets
import shlex
import signal
import socket
import stat as statmod
import struct
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

from . import adbwire as w

FAULTS = ("unauthorized", "drop", "crash", "app-error", "slow", "timeout", "flaky", "golden-drift")
REPO = Path(__file__).resolve().parent.parent
ACTIVITY = ".DevicekitBenchmarkActivity"
KNOWN = {  # model -> (manufacturer, codename, ro.soc.model)
    "Pixel 6": ("Google", "oriole", "GS101"),
    "Pixel 7": ("Google", "panther", "GS201"),
    "Pixel 8": ("Google", "shiba", "Tensor G3"),
    "Pixel 9": ("Google", "tokay", "Tensor G4"),
    "SM-S911B": ("samsung", "dm1q", "SM8550"),
}


class SimPhone:
    def __init__(
        self,
        root: Path,
        model: str = "Pixel 7",
        port: int = 0,
        faults: tuple[str, ...] = (),
        adb_keys: list[Path] | None = None,
        accept_new_keys: bool = True,
        installed: tuple[str, ...] = ("com.devicekit.bench",),
        thermal: int = 0,
        drop_after: int = 20,
        crash_after: int = 15,
        slow_ms: float = 40.0,
        serial: str | None = None,
        thermal_rise_s: float | None = None,
    ):
        bad = [f for f in faults if f not in FAULTS]
        if bad:
            raise ValueError(f"unknown fault(s) {bad}; known: {', '.join(FAULTS)}")
        self.root = Path(root)
        (self.root / "sdcard").mkdir(parents=True, exist_ok=True)
        (self.root / "data/local/tmp").mkdir(parents=True, exist_ok=True)
        self.model, self.faults, self.port = model, set(faults), port
        self.keys = []
        for p in adb_keys or []:
            for line in Path(p).read_text().splitlines():
                if line.strip():
                    self.keys.append(w.parse_pubkey(line))
        self.accept_new_keys = accept_new_keys and "unauthorized" not in self.faults
        self.installed = set(installed)
        self.thermal = thermal
        self.thermal_rise_s = thermal_rise_s  # status +1 per this many seconds of app running (throttling)
        self._launched_at: float | None = None
        self.drop_after, self.crash_after, self.slow_ms = drop_after, crash_after, slow_ms
        self.serial = serial
        self.children: dict[str, subprocess.Popen] = {}
        self.lock = threading.Lock()
        self.conns: set[socket.socket] = set()
        self.dropped = False
        self.flaked = False
        self.recv_frames_served = 0
        self.log: list[str] = []
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> "SimPhone":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))  # loopback only
        s.listen(8)
        self.port = s.getsockname()[1]
        self._sock = s
        t = threading.Thread(target=self._accept_loop, daemon=True, name="simphone-accept")
        t.start()
        self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._sock:
            try:
                self._sock.close()
            except OSError:
                pass
        self._drop_all()
        for pkg in list(self.children):
            self.force_stop(pkg)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            if self.dropped:
                conn.close()  # "the phone went away": refuse every new connection
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.conns.add(conn)
            threading.Thread(target=_Connection(self, conn).run, daemon=True, name="simphone-conn").start()

    def _drop_all(self) -> None:
        with self.lock:
            conns, self.conns = list(self.conns), set()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    # --- the device's files ------------------------------------------------------------------
    def local(self, remote: str) -> Path:
        norm = os.path.normpath("/" + remote.lstrip("/"))
        p = self.root / norm.lstrip("/")
        if os.path.commonpath([str(self.root.resolve()), str(p.resolve())]) != str(self.root.resolve()):
            raise PermissionError(remote)
        return p

    # --- properties ----------------------------------------------------------------------------
    def props(self) -> dict[str, str]:
        manu, code, soc = KNOWN.get(self.model, ("samsung" if self.model.startswith("SM-") else "Google", "sim", "SIM"))
        return {
            "ro.product.model": self.model,
            "ro.product.manufacturer": manu,
            "ro.product.name": code,
            "ro.product.device": code,
            "ro.build.version.release": "14",
            "ro.build.version.sdk": "34",
            "ro.soc.model": soc,
            "ro.product.cpu.abi": "arm64-v8a",
            "ro.serialno": self.serial or f"SIM{self.port}",
        }

    def banner(self) -> bytes:
        p = self.props()
        return (
            f"device::ro.product.name={p['ro.product.name']};ro.product.model={p['ro.product.model']};"
            f"ro.product.device={p['ro.product.device']};features=shell_v2,cmd\0"
        ).encode()

    # --- the app -------------------------------------------------------------------------------
    def launch(self, pkg: str, extras: dict[str, str]) -> None:
        self.force_stop(pkg)  # am start -S
        run = extras.get("devicekit.run", "")
        d = self.local(f"/sdcard/Android/data/{pkg}/files/devicekit/{run}")
        d.mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable,
            "-m",
            "device_tests.simapp",
            "--dir",
            str(d),
            "--model-name",
            self.model,
            "--manufacturer",
            self.props()["ro.product.manufacturer"],
            "--soc",
            self.props()["ro.soc.model"],
            "--frames",
            extras.get("devicekit.frames", "100"),
            "--warmup",
            extras.get("devicekit.warmup", "10"),
            "--threads",
            extras.get("devicekit.threads", "1"),
            "--delegate",
            extras.get("devicekit.delegate", "cpu"),
            "--thermal",
            str(self.thermal),
        ]
        if "crash" in self.faults:
            argv += ["--crash-after", str(self.crash_after)]
        if "app-error" in self.faults:
            argv += ["--error-after", str(self.crash_after)]
        if "timeout" in self.faults:
            argv += ["--hang-after", str(self.crash_after)]
        if "slow" in self.faults:
            argv += ["--slow-ms", str(self.slow_ms)]
        if self.thermal_rise_s:
            argv += ["--thermal-rise-s", str(self.thermal_rise_s)]
        if extras.get("devicekit.golden") == "true":  # protocol 2 (am start --ez devicekit.golden true)
            argv += ["--golden"] + (["--golden-drift", "2.0"] if "golden-drift" in self.faults else [])
        self._launched_at = time.monotonic()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
        self.children[pkg] = subprocess.Popen(
            argv, cwd=str(REPO), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(self.root / "app.log", "ab")
        )
        self.recv_frames_served = 0
        if "drop" in self.faults:
            threading.Thread(target=self._drop_when_due, args=(d / "frames.csv",), daemon=True).start()

    def _drop_when_due(self, frames: Path) -> None:
        while not self._stop.is_set() and not self.dropped:
            try:
                rows = max(0, len(frames.read_bytes().splitlines()) - 1)
            except OSError:
                rows = 0
            if rows >= self.drop_after and self.recv_frames_served > 0:
                self.dropped = True
                self.log.append(f"fault drop: connection dropped after {rows} frames")
                self._drop_all()
                return
            time.sleep(0.05)

    def thermal_status(self) -> int:
        if not self.thermal_rise_s or self._launched_at is None:
            return self.thermal
        return min(6, self.thermal + int((time.monotonic() - self._launched_at) / self.thermal_rise_s))

    def force_stop(self, pkg: str) -> None:
        p = self.children.pop(pkg, None)
        if p is not None and p.poll() is None:
            p.kill()
        if p is not None:
            p.wait(timeout=10)

    # --- shell ---------------------------------------------------------------------------------
    def shell(self, cmdline: str) -> tuple[int, bytes, bytes]:
        lex = shlex.shlex(cmdline, posix=True, punctuation_chars=";")
        lex.whitespace_split = True
        try:
            tokens = list(lex)
        except ValueError as exc:
            return 2, b"", f"/system/bin/sh: syntax error: {exc}\n".encode()
        rc, out, err = 0, b"", b""
        argv: list[str] = []
        for tok in tokens + [";"]:
            if tok != ";":
                argv.append(tok.replace("$?", str(rc)))
                continue
            if argv:
                rc, o, e = self._command(argv)
                out, err = out + o, err + e
            argv = []
        return rc, out, err

    def _command(self, argv: list[str]) -> tuple[int, bytes, bytes]:
        cmd, args = argv[0], argv[1:]
        self.log.append(shlex.join(argv))
        if cmd == "echo":
            return 0, (" ".join(args) + "\n").encode(), b""
        if cmd == "getprop":
            if not args:
                return 0, "".join(f"[{k}]: [{v}]\n" for k, v in self.props().items()).encode(), b""
            return 0, (self.props().get(args[0], "") + "\n").encode(), b""
        if cmd == "dumpsys" and args[:1] == ["thermalservice"]:
            return (
                0,
                (
                    f"IsStatusOverride: false\nThermalEventListeners:\n\tcallbacks: 0\nThermal Status: {self.thermal_status()}\n"
                    "Cached temperatures:\n\tTemperature{mValue=36.0, mType=3, mName=SKIN, mStatus=0}\n"
                ).encode(),
                b"",
            )
        if cmd == "mkdir":
            for a in (a for a in args if not a.startswith("-")):
                self.local(a).mkdir(parents=True, exist_ok=True)
            return 0, b"", b""
        if cmd == "rm":
            for a in (a for a in args if not a.startswith("-")):
                p = self.local(a)
                if p.is_file():
                    p.unlink()
            return 0, b"", b""
        if cmd == "pm":
            return self._pm(args)
        if cmd == "am":
            return self._am(args)
        return 127, b"", f"/system/bin/sh: {cmd}: inaccessible or not found\n".encode()

    def _pm(self, args: list[str]) -> tuple[int, bytes, bytes]:
        if args[:1] == ["path"] and len(args) == 2:
            if args[1] in self.installed:
                return 0, f"package:/data/app/~~sim/{args[1]}-1/base.apk\n".encode(), b""
            return 1, b"", b""
        if args[:1] == ["install"]:
            path = self.local(args[-1])
            if not path.is_file():
                return 1, b"", f"Failure [INSTALL_FAILED_INVALID_URI: {args[-1]}]\n".encode()
            if not zipfile.is_zipfile(path):
                return 1, b"Failure [INSTALL_PARSE_FAILED_NOT_APK: not a zip]\n", b""
            with zipfile.ZipFile(path) as z:  # the simulation reads the package name from a text entry
                names = z.namelist()
                pkg = z.read("devicekit-package.txt").decode().strip() if "devicekit-package.txt" in names else "com.devicekit.bench"
            self.installed.add(pkg)
            return 0, b"Performing Streamed Install\nSuccess\n", b""
        return 1, b"", f"pm: unsupported in the simulation: {' '.join(args)}\n".encode()

    def _am(self, args: list[str]) -> tuple[int, bytes, bytes]:
        if args[:1] == ["force-stop"] and len(args) == 2:
            self.force_stop(args[1])
            return 0, b"", b""
        if args[:1] != ["start"]:
            return 1, b"", f"am: unsupported in the simulation: {' '.join(args)}\n".encode()
        comp, extras, i = None, {}, 1
        while i < len(args):
            a = args[i]
            if a == "-n":
                comp, i = args[i + 1], i + 2
            elif a in ("--es", "--ei", "--ez"):
                extras[args[i + 1]], i = args[i + 2], i + 3
            else:
                i += 1
        if not comp or "/" not in comp:
            return 1, b"", b"Error: no component given\n"
        pkg, act = comp.split("/", 1)
        if pkg not in self.installed or act != ACTIVITY:
            full = pkg + act if act.startswith(".") else act
            return 1, (f"Starting: Intent {{ cmp={comp} }}\nError type 3\nError: Activity class {{{pkg}/{full}}} does not exist.\n").encode(), b""
        self.launch(pkg, extras)
        return (
            0,
            (
                f"Starting: Intent {{ cmp={comp} (has extras) }}\nStatus: ok\nLaunchState: COLD\n"
                f"Activity: {comp}\nTotalTime: 180\nWaitTime: 183\nComplete\n"
            ).encode(),
            b"",
        )


class _Stream:
    def __init__(self, local_id: int, remote_id: int):
        self.local_id, self.remote_id = local_id, remote_id
        self.inbox: queue.Queue = queue.Queue()
        self.acked = threading.Event()
        self.closed = False
        self.buf = bytearray()

    def read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.inbox.get()
            if chunk is None:
                raise w.Disconnected("stream closed")
            self.buf += chunk
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


class _Connection:
    def __init__(self, phone: SimPhone, sock: socket.socket):
        self.phone, self.sock = phone, sock
        self.send_lock = threading.Lock()
        self.streams: dict[int, _Stream] = {}
        self.next_id = 1
        self.max_payload = 4096
        self.check = True

    def send(self, cmd: bytes, a0: int, a1: int, data: bytes = b"") -> None:
        with self.send_lock:
            self.sock.sendall(w.pack(cmd, a0, a1, data))

    def run(self) -> None:
        try:
            self._handshake()
            while True:
                cmd, a0, a1, data = w.read_message(self.sock, self.check)
                self._dispatch(cmd, a0, a1, data)
        except (w.Disconnected, OSError):
            pass
        finally:
            for s in self.streams.values():
                s.inbox.put(None)
                s.acked.set()
            with self.phone.lock:
                self.phone.conns.discard(self.sock)
            try:
                self.sock.close()
            except OSError:
                pass

    def _handshake(self) -> None:
        cmd, a0, a1, data = w.read_message(self.sock)
        while cmd != b"CNXN":
            cmd, a0, a1, data = w.read_message(self.sock)
        self.max_payload = max(4096, min(a1, w.MAX_PAYLOAD))
        self.check = a0 < w.A_VERSION_SKIP_CHECKSUM
        token = secrets.token_bytes(20)
        self.send(b"AUTH", w.AUTH_TOKEN, 0, token)
        while True:
            cmd, a0, a1, data = w.read_message(self.sock)
            if cmd != b"AUTH":
                continue
            if a0 == w.AUTH_SIGNATURE:
                if "unauthorized" not in self.phone.faults and any(w.verify_signature(k, token, data) for k in self.phone.keys):
                    break
                token = secrets.token_bytes(20)
                self.send(b"AUTH", w.AUTH_TOKEN, 0, token)
            elif a0 == w.AUTH_RSAPUBLICKEY:
                if not self.phone.accept_new_keys:
                    self.phone.log.append("fault unauthorized: key refused")
                    continue  # the prompt is never accepted: the host stays "unauthorized"
                self.phone.keys.append(w.parse_pubkey(data))  # the user tapped "Allow"
                break
        self.send(b"CNXN", w.A_VERSION, w.MAX_PAYLOAD, self.phone.banner())

    def _dispatch(self, cmd: bytes, a0: int, a1: int, data: bytes) -> None:
        if cmd == b"OPEN":
            service = data.rstrip(b"\0").decode(errors="replace")
            st = _Stream(self.next_id, a0)
            self.next_id += 1
            handler = self._handler(service)
            if handler is None:
                self.send(b"CLSE", 0, a0)
                return
            self.streams[st.local_id] = st
            self.send(b"OKAY", st.local_id, a0)
            threading.Thread(target=self._run_stream, args=(st, handler, service), daemon=True).start()
        elif cmd == b"OKAY":
            st = self.streams.get(a1)
            if st:
                st.acked.set()
        elif cmd == b"WRTE":
            st = self.streams.get(a1)
            if st:
                self.send(b"OKAY", st.local_id, st.remote_id)
                st.inbox.put(data)
        elif cmd == b"CLSE":
            st = self.streams.pop(a1, None)
            if st and not st.closed:
                st.closed = True
                st.inbox.put(None)
                st.acked.set()
                self.send(b"CLSE", st.local_id, st.remote_id)

    def _handler(self, service: str):
        head, _, cmdline = service.partition(":")
        opts = head.split(",")  # e.g. shell,v2,TERM=xterm,raw:COMMAND
        if opts[0] in ("shell", "exec"):
            return lambda st: self._shell(st, cmdline, v2=opts[0] == "shell" and "v2" in opts[1:])
        if service == "sync:":
            return self._sync
        return None

    def _run_stream(self, st: _Stream, handler, service: str) -> None:
        try:
            handler(st)
        except (w.Disconnected, OSError):
            pass
        finally:
            if not st.closed:
                st.closed = True
                self.streams.pop(st.local_id, None)
                try:
                    self.send(b"CLSE", st.local_id, st.remote_id)
                except OSError:
                    pass

    def write(self, st: _Stream, data: bytes) -> None:
        for i in range(0, len(data), self.max_payload):
            if st.closed:
                raise w.Disconnected("stream closed by host")
            st.acked.clear()
            self.send(b"WRTE", st.local_id, st.remote_id, data[i : i + self.max_payload])
            if not st.acked.wait(30):
                raise w.Disconnected("host did not acknowledge")

    def _shell(self, st: _Stream, cmdline: str, v2: bool) -> None:
        rc, out, err = self.phone.shell(cmdline)
        if v2:
            payload = (
                (w.shell_packet(w.SHELL_STDOUT, out) if out else b"")
                + (w.shell_packet(w.SHELL_STDERR, err) if err else b"")
                + w.shell_packet(w.SHELL_EXIT, bytes([rc & 0xFF]))
            )
            self.write(st, payload)
        elif out or err:
            self.write(st, out + err)

    def _sync(self, st: _Stream) -> None:
        while True:
            ident = st.read(4)
            length = struct.unpack("<I", st.read(4))[0]
            if ident == b"QUIT":
                return
            arg = st.read(length)
            if ident in (b"STAT", b"LIST", b"RECV", b"SEND") and self.phone.dropped:
                raise w.Disconnected("dropped")
            if ident == b"STAT" and arg.endswith(b"/done.json") and "flaky" in self.phone.faults and not self.phone.flaked:
                self.phone.flaked = True  # one transient transport error: the connection resets once
                self.phone.log.append("fault flaky: connection reset once")
                self.phone._drop_all()
                raise w.Disconnected("flaky")
            if ident == b"STAT":
                self.write(st, b"STAT" + struct.pack("<3I", *self._stat(arg.decode())))
            elif ident == b"LIST":
                self._list(st, arg.decode())
            elif ident == b"RECV":
                self._recv(st, arg.decode())
            elif ident == b"SEND":
                self._send(st, arg.decode())
            else:
                self._fail(st, f"unknown sync request {ident!r}")
                return

    def _stat(self, remote: str) -> tuple[int, int, int]:
        try:
            p = self.phone.local(remote)
            s = p.stat()
        except (OSError, PermissionError):
            return 0, 0, 0
        return s.st_mode & 0xFFFFFFFF, s.st_size & 0xFFFFFFFF, int(s.st_mtime)

    def _list(self, st: _Stream, remote: str) -> None:
        p = self.phone.local(remote)
        out = b""
        if p.is_dir():
            for child in sorted([Path("."), Path(".."), *p.iterdir()], key=str):
                s = (p / child).stat()
                name = child.name or str(child)
                out += b"DENT" + struct.pack("<4I", s.st_mode, s.st_size & 0xFFFFFFFF, int(s.st_mtime), len(name.encode())) + name.encode()
        self.write(st, out + b"DONE" + struct.pack("<4I", 0, 0, 0, 0))

    def _recv(self, st: _Stream, remote: str) -> None:
        p = self.phone.local(remote)
        if not p.is_file():
            self._fail(st, f"remote object '{remote}' does not exist")
            return
        data = p.read_bytes()
        if p.name == "frames.csv":
            self.phone.recv_frames_served += 1
        out = b"".join(b"DATA" + struct.pack("<I", len(data[i : i + 65536])) + data[i : i + 65536] for i in range(0, len(data), 65536))
        self.write(st, out + b"DONE" + struct.pack("<I", 0))

    def _send(self, st: _Stream, spec: str) -> None:
        path, _, mode = spec.rpartition(",")
        p = self.phone.local(path or spec)
        chunks = []
        while True:
            ident = st.read(4)
            n = struct.unpack("<I", st.read(4))[0]
            if ident == b"DATA":
                chunks.append(st.read(n))
            elif ident == b"DONE":
                break
            else:
                self._fail(st, f"unexpected {ident!r} during SEND")
                return
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.sim-tmp")
        tmp.write_bytes(b"".join(chunks))
        os.replace(tmp, p)
        try:
            os.chmod(p, statmod.S_IMODE(int(mode or "0644", 0 if str(mode).startswith("0") else 10)))
        except (ValueError, OSError):
            pass
        self.write(st, b"OKAY" + struct.pack("<I", 0))

    def _fail(self, st: _Stream, msg: str) -> None:
        m = msg.encode()
        self.write(st, b"FAIL" + struct.pack("<I", len(m)) + m)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m device_tests.simphone", description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=5555)
    ap.add_argument("--model", default="Pixel 7", help="ro.product.model to report (e.g. 'Pixel 7', SM-S911B)")
    ap.add_argument("--root", type=Path, default=None, help="the simulated filesystem (default: a temp dir)")
    ap.add_argument("--fault", action="append", default=[], choices=FAULTS)
    ap.add_argument("--adb-keys", type=Path, action="append", default=[], help="authorized public keys (adb_keys format)")
    ap.add_argument("--no-accept-new-keys", action="store_true", help="refuse keys not in --adb-keys")
    ap.add_argument("--no-app", action="store_true", help="start without com.devicekit.bench installed")
    ap.add_argument("--thermal", type=int, default=0)
    ap.add_argument("--thermal-rise-s", type=float, default=None, help="thermal status +1 per S s of app running")
    args = ap.parse_args(argv)
    import tempfile

    root = args.root or Path(tempfile.mkdtemp(prefix="simphone-"))
    phone = SimPhone(
        root,
        args.model,
        args.port,
        tuple(args.fault),
        args.adb_keys,
        not args.no_accept_new_keys,
        () if args.no_app else ("com.devicekit.bench",),
        args.thermal,
        thermal_rise_s=args.thermal_rise_s,
    )
    phone.start()
    print(f"simphone (SIMULATION): {args.model} listening on {phone.address}, files in {root}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    phone.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
