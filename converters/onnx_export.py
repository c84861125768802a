"""PyTorch -> ONNX, the first step of the TFLite path. Never touches the user's files."""

from __future__ import annotations

import shutil
from pathlib import Path

from devicekit.errors import ConversionError, UnsupportedOpError, first_line


def _quiet_export(torch, module, x, path: Path, dynamo: bool, kwargs: dict) -> None:
    """torch.onnx.export without its graph dumps and tracer warnings (shown with DEVICEKIT_DEBUG)."""
    import contextlib
    import io
    import os
    import sys
    import warnings

    if os.environ.get("DEVICEKIT_DEBUG"):
        torch.onnx.export(module, (x,), str(path), dynamo=dynamo, **kwargs)
        return
    # the TorchScript exporter's C++ side prints whole graphs to fd 1 when it gives up
    sys.stdout.flush()
    saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (x,), str(path), dynamo=dynamo, **kwargs)
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def export_onnx(model, path: Path) -> Path:
    """Write ``model`` as ONNX to ``path`` (a copy for ONNX sources)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if model.onnx_path is not None:
        shutil.copyfile(model.onnx_path, path)  # onnx2tf rewrites its input: give it a copy
        return path
    import torch

    x = torch.zeros(model.spec.shape)
    names = model.output_names or None
    errors = []
    # TorchScript-based export first (opset 17, predictable op set); dynamo for torch.export modules.
    for dynamo in (False, True):
        try:
            kwargs = dict(input_names=["input"], output_names=names, opset_version=17 if not dynamo else 18)
            if dynamo:
                kwargs["external_data"] = False
            _quiet_export(torch, model.module, x, path, dynamo, kwargs)
            return path
        except Exception as exc:  # noqa: BLE001 - the exporters raise many kinds
            errors.append(exc)
    msg = first_line(errors[-1], None)
    for exc in errors:
        text = str(exc)
        if "roi_align" in text or "torchvision::" in text:
            raise UnsupportedOpError("torchvision::roi_align", None, "ONNX export",
                                     hint="write RoIAlign with grid_sample or devicekit.zoo.layers.roi_crop") from None
    raise ConversionError(f"ONNX export of {model.name} failed ({msg[:300]})")
