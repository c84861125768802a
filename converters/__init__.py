"""The heavy side: PyTorch/ONNX -> TFLite and CoreML, calibration, quantisation policy.

Public API: ``load_model``, ``load_calibration``, ``TARGETS``; ``devicekit.pipeline.convert`` runs them.
Targets register themselves on import (``tflite``; ``coreml`` when
coremltools is installed).
"""

from __future__ import annotations

import importlib

from .base import TARGETS, ConversionResult, ConvertOptions, QuantPolicy, Target, resolve_targets  # noqa: F401
from .calibration import CalibrationSet, load_calibration  # noqa: F401
from .judge import GateConfig  # noqa: F401
from .load import LoadedModel, load_model  # noqa: F401

for _mod in ("tflite", "coreml"):
    try:
        importlib.import_module(f"{__name__}.{_mod}")
    except ImportError as _exc:  # a target family whose stack is not installed
        if _mod == "tflite":
            raise
        if getattr(_exc, "name", "") and not _exc.name.startswith(("coremltools", f"{__name__}.{_mod}")):
            raise

