"""Light model-file readers: .tflite (flatbuffer), .onnx (onnx protobuf), .mlpackage (CoreML spec).

``read_model(path)`` picks the reader from the suffix and checks the content
agrees with it; every problem with the file becomes a one-line ``InputError``.
None of these readers import torch or tensorflow.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from ..registry import FORMATS, format_of
from .facts import ModelFacts, Op, Tensor

__all__ = ["read_model", "ModelFacts", "Op", "Tensor", "READERS"]

# registry format name -> reader (module:function in this package); one table, dispatched exhaustively
READERS = {"tflite": "tflite:read_tflite", "onnx": "onnxfile:read_onnx", "mlpackage": "mlpackage:read_mlpackage"}
MAX_FILE_BYTES = 4 << 30


def _sniff(data: bytes) -> str | None:
    if len(data) >= 8 and data[4:8] == b"TFL3":
        return ".tflite"
    return None


def check_kind(path: str | Path) -> tuple[Path, str]:
    """(path, suffix) of a model file devicekit reads, or a one-line InputError: missing, unknown suffix (with a
    hint when the bytes say what it is), a directory where a file belongs, empty, too large."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"model file not found: {p}")
    suffix = p.suffix.lower()
    if suffix not in {f.suffix for f in FORMATS.values()}:
        hint = "supported: " + ", ".join(f.suffix for f in FORMATS.values())
        if p.is_file():
            with open(p, "rb") as fh:
                sniffed = _sniff(fh.read(8))
            if sniffed:
                hint = f"it looks like a {sniffed} file: rename it"
        raise InputError(f"{p.name}: unsupported model file type {suffix or '(no suffix)'!r}", hint=hint)
    if format_of(p).directory:
        return p, suffix
    if p.is_dir():
        raise InputError(f"{p}: is a directory, expected a {suffix} file")
    size = p.stat().st_size
    if size == 0:
        raise InputError(f"{p.name}: empty file (0 bytes)")
    if size > MAX_FILE_BYTES:
        raise InputError(f"{p.name}: {size} bytes is larger than devicekit reads ({MAX_FILE_BYTES} bytes)")
    return p, suffix


def read_model(path: str | Path) -> ModelFacts:
    import importlib

    p, suffix = check_kind(path)
    fmt = format_of(p)
    module, func = READERS[fmt.name].split(":")
    reader = getattr(importlib.import_module(f"{__name__}.{module}"), func)
    if fmt.directory:
        return reader(p)
    return reader(str(p), p.read_bytes())
