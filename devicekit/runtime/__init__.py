"""One runtime layer: run an artifact the way its target device does, and compare it with a reference.

``open_runner(path)`` picks the runtime by the file's registry format (``RUNNERS``); every
runner takes the normalised model input (NCHW float, batch 1) in ``run(x)``
and returns float32 outputs in the model's order. ``compare`` (compare.py)
judges candidate outputs against reference outputs per head. Convert's gate,
verify and bench all go through here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..errors import InputError
from .compare import Agreement, Limits, compare, head_kinds, match_outputs  # noqa: F401
from .tflite import DELEGATES, DelegateError, TFLiteRunner  # noqa: F401


def _tflite(path: Path, **kw):
    return TFLiteRunner(path, **kw)


def _mlpackage(path: Path, **kw):
    from ..milref import MLPackageRunner  # devicekit's MIL interpreter (CoreML predict needs macOS)

    return MLPackageRunner(path)


def _onnx(path: Path, threads: int = 1, **kw):
    from .onnx import OnnxRunner

    return OnnxRunner(path, threads=threads)


# registry format name -> runner factory; one table, dispatched exhaustively (tests/test_registry.py)
RUNNERS: dict[str, Callable] = {"tflite": _tflite, "mlpackage": _mlpackage, "onnx": _onnx}


def open_runner(path: str | Path, **kw):
    path = Path(path)
    if not path.exists():
        raise InputError(f"model file not found: {path}")
    from ..registry import format_of

    return RUNNERS[format_of(path).name](path, **kw)
