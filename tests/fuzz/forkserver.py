"""A fork server: heavy imports once, then every request in a fresh forked child.

The oracle (LiteRT, onnx, coremltools) and the CLI runner both need a clean process per file (a mutant that
corrupts memory without crashing must not change the verdict on the next one, and one that kills the process
must not kill the harness), but paying Python + numpy + torch start-up per file makes a few hundred mutants
take many minutes. The server imports what the requests need, then forks one child per request: the child
gets a copy of the warm process, handles one request with stdout/stderr sent to a file, and exits; the server
reports its exit status (a negative number is the signal that killed it), or ``None`` after the timeout
(the child and everything it started are killed).

Protocol (one JSON line each way): ``{"role": ..., "req": {...}, "timeout": s, "warm": [modules]}`` ->
``{"status": int|null, "result": {...}|null, "output": "..."}``.
"""

from __future__ import annotations

import importlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARK = "@@fork@@ "


def _child(role: str, req: dict, out_file: str, result_file: str) -> int:
    fd = os.open(out_file, os.O_WRONLY | os.O_TRUNC)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = open(1, "w", closefd=False)
    sys.stderr = open(2, "w", closefd=False)
    handler = importlib.import_module(f"fuzz.{role}").handle
    rc, result = handler({**req, "_partial": result_file})  # a handler may leave a partial result before it risks dying
    with open(result_file, "w") as fh:
        json.dump(result, fh)
    sys.stdout.flush()
    sys.stderr.flush()
    return rc


def _serve() -> None:
    reply = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    tmp = Path(tempfile.mkdtemp(prefix="devicekit-fork-"))
    out_file, result_file = str(tmp / "out.txt"), str(tmp / "result.json")
    warmed: set[str] = set()
    for line in sys.stdin:
        msg = json.loads(line)
        for name in msg.get("warm", []):  # "module" to import, or "module:function" to call once
            if name in warmed:
                continue
            warmed.add(name)
            mod, _, fn = name.partition(":")
            try:
                m = importlib.import_module(mod)
                if fn:
                    getattr(m, fn)()
            except Exception:  # noqa: BLE001 - the child will import it (and fail) itself
                pass
        for f in (out_file, result_file):
            open(f, "w").close()
        pid = os.fork()
        if pid == 0:
            os.setpgid(0, 0)  # the child and anything it starts: one group to kill on timeout
            code = 70
            try:
                code = _child(msg["role"], msg["req"], out_file, result_file)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:  # noqa: BLE001
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
        status = _wait(pid, float(msg.get("timeout", 120)))
        result = None
        try:
            text = Path(result_file).read_text()
            result = json.loads(text) if text.strip() else None
        except (OSError, ValueError):
            pass
        output = Path(out_file).read_text(errors="replace")[-6000:]
        reply.write(MARK + json.dumps({"status": status, "result": result, "output": output}) + "\n")
        reply.flush()


def _wait(pid: int, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            try:
                os.killpg(pid, signal.SIGKILL)  # grandchildren the command left behind
            except ProcessLookupError:
                pass
            return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        if time.monotonic() > deadline:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            return None
        time.sleep(0.005)


class ForkServer:
    """The harness's end: ``call(role, req, timeout, warm)`` -> (status, result, output)."""

    def __init__(self, env: dict | None = None, devicekit_root: Path | None = None):
        """``devicekit_root``: import devicekit from another checkout (the harness compares a branch with main)."""
        path = [str(devicekit_root or ROOT), str(ROOT / "tests")]
        self.cwd = str(devicekit_root or ROOT)  # `python -m` puts the working directory first on sys.path
        self.env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(path),
            TF_CPP_MIN_LOG_LEVEL="3",
            OMP_NUM_THREADS="1",
            OPENBLAS_NUM_THREADS="1",
            COLUMNS="200",
            **(env or {}),
        )
        self.proc: subprocess.Popen | None = None

    def call(self, role: str, req: dict, timeout: float, warm: list[str] = ()) -> tuple[int | None, dict | None, str]:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "fuzz.forkserver"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env=self.env,
                cwd=self.cwd,
            )
        self.proc.stdin.write(json.dumps({"role": role, "req": req, "timeout": timeout, "warm": list(warm)}) + "\n")
        self.proc.stdin.flush()
        # generous: the server enforces ``timeout`` on the child; this only guards against the server itself
        deadline = time.monotonic() + timeout + 300
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith(MARK):
                msg = json.loads(line[len(MARK) :])
                return msg["status"], msg["result"], msg["output"]
        self.close(kill=True)
        raise RuntimeError("the fork server stopped answering")

    def close(self, kill: bool = False) -> None:
        if self.proc is not None:
            if kill:
                self.proc.kill()
            else:
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


if __name__ == "__main__":
    _serve()
