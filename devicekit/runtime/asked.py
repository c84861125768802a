"""Verdicts asked of child processes, remembered by the bytes they were about (per process).

``probe`` (LiteRT) and ``runtime.verdict.ask`` (onnx, coremltools) each start a child per call; check, bench
and verify validate a file before they use it, so a process that runs several of them (the fuzz harness, a
conversion that checks what it wrote) would ask again about the same bytes. The key is a sha256 of the file's
content (every file of a directory such as an .mlpackage, with its relative path), so an edited file is asked
again. ``remember`` records an answer the caller already has (the fuzz harness's oracle asks the same code).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

_KNOWN: dict[tuple[str, str], dict] = {}
MAX = 512


def digest(path: str | Path) -> str | None:
    p = Path(path)
    h = hashlib.sha256()
    try:
        if p.is_dir():
            for f in sorted(q for q in p.rglob("*") if q.is_file()):
                h.update(f.relative_to(p).as_posix().encode() + b"\0" + f.read_bytes())
        else:
            h.update(p.read_bytes())
    except OSError:
        return None
    return h.hexdigest()


def remember(kind: str, path: str | Path, result: dict) -> None:
    _keep(kind, digest(path), result)


def _keep(kind: str, key: str | None, result: dict) -> None:
    if key is not None:
        if len(_KNOWN) >= MAX:
            _KNOWN.pop(next(iter(_KNOWN)))
        _KNOWN[kind, key] = result


def remembered(kind: str, keep=lambda result: True):
    """Decorator for ``fn(path, timeout)``: the first answer per content is kept when ``keep(answer)``."""

    def wrap(fn):
        @functools.wraps(fn)
        def wrapper(path, timeout: float | None = None) -> dict:
            key = digest(path)
            if key is not None and (kind, key) in _KNOWN:
                return _KNOWN[kind, key]
            res = fn(path) if timeout is None else fn(path, timeout)
            if keep(res):
                _keep(kind, key, res)
            return res

        return wrapper

    return wrap
