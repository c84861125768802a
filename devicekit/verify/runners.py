"""Run a landmark model on one preprocessed NCHW input -> [L, 2] in model-input pixels.

One small interface over devicekit.runtime: the PyTorch reference, a
converted TFLite (LiteRT with XNNPACK, as on a phone), and an .mlpackage in
devicekit's MIL interpreter (CoreML predict needs macOS). An op the
interpreter does not cover raises ``NotVerified``, whose reason goes into
the result instead of a number.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import InputError


class NotVerified(Exception):
    """No number for this artifact here (an op the MIL reference interpreter does not cover); the reason goes into the report."""


def _landmarks(outputs: list[np.ndarray], count: int | None) -> np.ndarray:
    for o in outputs:
        a = np.asarray(o, np.float32)
        if a.ndim >= 2 and a.shape[-1] in (2, 3) and (count is None or a.shape[-2] == count):
            return a.reshape(-1, a.shape[-1])[:, :2]
    for o in outputs:  # flat [1, 2L]
        a = np.asarray(o, np.float32).ravel()
        if count and a.size == 2 * count:
            return a.reshape(count, 2)
    raise InputError(f"the model has no landmark output (outputs: {[list(np.shape(o)) for o in outputs]})")


class TorchRunner:
    name = "pytorch"

    def __init__(self, module, count: int | None = 68):
        self.module, self.count = module, count

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if hasattr(self.module, "run_reference"):  # a converters.LoadedModel (PyTorch or ONNX source)
            return _landmarks(self.module.run_reference(x), self.count)
        import torch

        with torch.no_grad():
            out = self.module(torch.from_numpy(np.ascontiguousarray(x, np.float32)))
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return _landmarks([o.detach().cpu().numpy() for o in outs], self.count)


class TFLiteModel:
    name = "tflite (LiteRT, XNNPACK)"

    def __init__(self, path: Path, count: int | None = 68):
        from ..runtime import TFLiteRunner

        self.runner, self.count = TFLiteRunner(path, delegate="xnnpack"), count

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return _landmarks(self.runner.run(x), self.count)


class CoreMLModel:
    """An .mlpackage run by devicekit's numpy MIL reference interpreter (CoreML predict needs macOS)."""

    name = "coreml (MIL reference interpreter)"

    def __init__(self, path: Path, count: int | None = 68):
        from ..milref import MLPackageRunner, uncovered_ops

        missing = uncovered_ops(path)
        if missing:  # never a silent pass: an op the interpreter lacks means no number
            raise NotVerified(f"not verified: the MIL reference interpreter does not cover {', '.join(sorted(missing))}")
        self.runner, self.count = MLPackageRunner(path), count

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return _landmarks(self.runner.run(x), self.count)


# registry format name -> factory; one table, dispatched exhaustively (an .onnx is not a phone's artifact)
RUNTIMES: dict[str, Callable] = {"tflite": TFLiteModel, "mlpackage": CoreMLModel}


def runtime_for(path: Path) -> Callable:
    from ..registry import FORMATS

    for name, factory in RUNTIMES.items():
        if FORMATS[name].suffix == path.suffix.lower():
            return factory
    known = ", ".join(FORMATS[f].suffix for f in RUNTIMES)
    raise InputError(f"{path.name}: verify runs {known} artifacts, not {path.suffix or 'this file'}")


def converted_runner(path: str | Path, count: int | None = 68):
    path = Path(path)
    if not path.exists():
        raise InputError(f"artifact not found: {path}")
    return runtime_for(path)(path, count)
