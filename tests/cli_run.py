"""Run the devicekit CLI in a subprocess, as a user would, and check a one-line error (helpers, not tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cli(*args, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200", TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "devicekit", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def one_line_error(r: subprocess.CompletedProcess, code: int, *words: str) -> str:
    """Exit ``code``, no traceback or internal error, every one of ``words`` in the (unwrapped) message."""
    assert r.returncode == code, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    msg = " ".join(r.stderr.split())
    for w in words:
        assert w in msg, (w, msg)
    return msg


# Prepended to a `python -c` program: importing a heavy framework fails, as where only the light core is installed.
BLOCK_HEAVY = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("torch", "tensorflow", "onnx2tf", "coremltools", "tf_keras", "keras"):
            raise ImportError("blocked " + name)
sys.meta_path.insert(0, Block())
"""
