"""The runtime's own verdict on a model file, from a long-lived child process (restarted when a file kills it).

- .tflite: LiteRT, exactly as ``devicekit.runtime.probe`` asks it (builtin kernels, then the default resolver
  with XNNPACK: load, allocate, invoke on zeros).
- .onnx: the onnx checker (``full_check=True``), then onnxruntime (session, one run on zeros) when installed.
- .mlpackage: coremltools' own loader of the ML program (``milproto.load``: the spec, every op, every weight
  blob), which is what ``ct.models.MLModel`` builds a program from.

The .onnx and .mlpackage judges are devicekit.runtime.verdict's (the tools themselves, asked the same way), so
for those formats the fuzz checks devicekit's wiring, crash-freedom and exit codes rather than a second opinion.

Verdicts: ``runs`` (the runtime loads and runs it), ``no-invoke`` / ``no-allocate`` (loads, then fails),
``refused`` (the loader or verifier says no), ``crashed`` (the child died on it), ``timeout``.
Each file is judged in a fresh fork of a warm process (``forkserver.py``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from devicekit.errors import first_line

ROOT = Path(__file__).resolve().parents[2]
BAD = ("refused", "no-allocate", "no-invoke", "crashed", "timeout")


def sound_tflite(data: bytes) -> str | None:
    """None when the flatbuffer is structurally sound, else why not: an independent walk with the schema's own
    generated object API (ai_edge_litert.schema_py_generated, not devicekit's reader), plus the external-buffer
    ranges it does not check. LiteRT's Python interpreter runs no verifier, so it may "run" a file whose vectors
    point past its end (reading memory that is not the file); such a file is not sound."""
    import flatbuffers.table
    from ai_edge_litert import schema_py_generated as schema

    if len(data) < 8 or data[4:8] != b"TFL3":
        return "no TFL3 identifier"
    plain = flatbuffers.table.Table.String

    def string(self, off):  # the generated String() slices: a length past the end just comes back shorter
        start = off + flatbuffers.encode.Get(flatbuffers.packer.uoffset, self.Bytes, off)
        n = flatbuffers.encode.Get(flatbuffers.packer.uoffset, self.Bytes, start)
        if start + 4 + n > len(self.Bytes):
            raise ValueError(f"a string of {n} bytes at {start} runs past the end of the file")
        return plain(self, off)

    import flatbuffers.encode  # noqa: F401 - used by string()
    import flatbuffers.packer  # noqa: F401

    flatbuffers.table.Table.String = string
    try:
        m = schema.ModelT.InitFromPackedBuf(data, 0)
    except Exception as exc:  # noqa: BLE001 - struct.error, ValueError, IndexError on out-of-range reads
        return f"object API: {first_line(exc, 240, typed=True)}"
    finally:
        flatbuffers.table.Table.String = plain
    for i, b in enumerate(m.buffers or []):
        if b.offset and b.offset > 1 and b.offset + b.size > len(data):
            return f"buffer {i} data at {b.offset}+{b.size} is past the end of the file"
    return None


def judge_tflite(path: str) -> dict:
    from devicekit.runtime.probe import _run, limit_memory

    limit_memory(path)  # as devicekit's own probe child does: a runaway allocation fails instead of eating the machine

    unsound = sound_tflite(Path(path).read_bytes())
    _note({"unsound": unsound})  # kept by the parent even if LiteRT then kills this process
    try:
        res = _run(path)
    except Exception as exc:  # noqa: BLE001 - LiteRT loaded it but its Python API cannot describe it (a name that is
        # not UTF-8): devicekit's probe child dies with that traceback, so the file cannot be used from Python
        return {"verdict": "refused", "error": f"LiteRT's Python API: {first_line(exc, 240, typed=True)}", "unsound": unsound, "xnnpack": "no"}
    b, x = res.get("builtin", {}), res.get("xnnpack", {})
    if b.get("invoke") or x.get("invoke"):
        verdict = "runs"
    elif b.get("allocate") or x.get("allocate"):
        verdict = "no-invoke"
    elif b.get("load") or x.get("load"):
        verdict = "no-allocate"
    else:
        verdict = "refused"
    return {"verdict": verdict, "error": b.get("error") or x.get("error"), "probe": res.get("verdict"),
            "xnnpack": "runs" if x.get("invoke") else "no", "unsound": unsound, "raw": res}


def judge_tools(path: str) -> dict:
    """.onnx and .mlpackage: the format's own tools, exactly as ``devicekit.runtime.verdict`` asks them."""
    from devicekit.runtime.verdict import judge

    v = judge(path)
    verdict = "runs" if v["ok"] else {"checker": "refused", "loader": "refused", "session": "no-allocate",
                                      "run": "no-invoke"}[v["stage"]]
    return {"verdict": verdict, "error": v.get("error"), "stage": v.get("stage"), "runtime": v.get("runtime"), "raw": v}


JUDGES = {".tflite": judge_tflite, ".onnx": judge_tools, ".mlpackage": judge_tools}
WARM = {".tflite": ["numpy", "ai_edge_litert.interpreter", "ai_edge_litert.schema_py_generated", "devicekit.runtime.probe"],
        ".onnx": ["numpy", "onnx", "onnxruntime", "devicekit.runtime.verdict"],
        ".mlpackage": ["fuzz.oracle:keep_out_torch", "coremltools", "coremltools.converters.mil.frontend.milproto.load"]}


def keep_out_torch() -> None:
    """As devicekit.runtime.verdict's child does: coremltools reads a program without torch or tensorflow."""
    import sys

    for name in ("torch", "tensorflow", "sklearn"):
        sys.modules.setdefault(name, None)
_PARTIAL: str | None = None


def _note(obj: dict) -> None:
    """Leave a partial verdict where the fork server finds it even if the runtime then kills this process."""
    if _PARTIAL:
        Path(_PARTIAL).write_text(json.dumps(obj))


def handle(req: dict) -> tuple[int, dict]:
    """The fork server's ``oracle`` role: one file, judged in this (forked, throw-away) process."""
    global _PARTIAL
    _PARTIAL = req.get("_partial")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    path = req["path"]
    try:
        return 0, JUDGES[Path(path).suffix.lower()](path)
    except Exception as exc:  # noqa: BLE001 - a bug in the judge itself is reported, not fatal
        return 0, {"verdict": "judge-error", "error": first_line(exc, 240, typed=True)}


class Oracle:
    """``Oracle().judge(path)`` -> verdict dict; each file in a fresh fork of a warm process."""

    def __init__(self, timeout: float = 120.0, server=None):
        from .forkserver import ForkServer

        self.timeout = timeout
        self.server = server or ForkServer()

    def judge(self, path: Path) -> dict:
        suffix = Path(path).suffix.lower()
        status, result, _ = self.server.call("oracle", {"path": str(path)}, self.timeout, WARM.get(suffix, []))
        notes = result or {}
        if status is None:
            return {**notes, "verdict": "timeout", "error": f"no verdict in {self.timeout:.0f} s"}
        if status != 0 or "verdict" not in notes:
            return {**notes, "verdict": "crashed", "error": f"the runtime died (exit {status})"}
        return notes

    def close(self) -> None:
        self.server.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
