"""The litert-torch backend: PyTorch -> TFLite without ONNX, in its own environment.

litert-torch's pins (numpy 2, ai-edge-litert 2.3) conflict with the onnx2tf
stack, so it lives in a second venv (``make setup-litert-torch`` makes
``.venv-litert-torch``; or point ``DEVICEKIT_LITERT_TORCH_PYTHON`` at any
Python that has litert-torch). devicekit runs ``litert_torch_worker.py``
there with an argument list (no shell) and reads back the .tflite.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from devicekit.errors import ConversionError, EnvironmentMissing, UsageError, first_line

WORKER = Path(__file__).with_name("litert_torch_worker.py")


def backend_python() -> Path:
    env = os.environ.get("DEVICEKIT_LITERT_TORCH_PYTHON")
    candidates = [Path(env)] if env else []
    candidates += [Path.cwd() / ".venv-litert-torch/bin/python", Path(__file__).resolve().parents[1] / ".venv-litert-torch/bin/python"]
    for c in candidates:
        if c.exists():
            return c
    raise EnvironmentMissing(
        "the litert-torch backend needs its own environment, which was not found",
        hint="run `make setup-litert-torch` or set DEVICEKIT_LITERT_TORCH_PYTHON",
    )


def convert_with_litert_torch(model, calib, precision: str) -> bytes:
    if precision not in ("fp32", "int8"):
        raise UsageError(f"the litert-torch backend makes fp32 and int8, not {precision}", hint="use --backend onnx2tf")
    if not model.is_torch:
        raise UsageError("the litert-torch backend needs a PyTorch model, not ONNX", hint="use --backend onnx2tf")
    import torch

    py = backend_python()
    with tempfile.TemporaryDirectory(prefix="devicekit-litert-torch-") as tmp:
        tmp = Path(tmp)
        x = torch.from_numpy(np.ascontiguousarray(calib.inputs[:1], dtype=np.float32))
        try:
            ep = torch.export.export(model.module, (x,))
        except Exception as exc:  # noqa: BLE001
            raise ConversionError(f"torch.export of {model.name} failed ({first_line(exc, 200)})") from None
        torch.export.save(ep, tmp / "model.pt2")
        np.save(tmp / "calib.npy", calib.inputs.astype(np.float32))
        out = tmp / "model.tflite"
        r = subprocess.run(
            [str(py), str(WORKER), str(tmp / "model.pt2"), str(tmp / "calib.npy"), str(out), precision],
            capture_output=True,
            text=True,
            timeout=3600,
            cwd=tmp,
        )
        if r.returncode != 0 or not out.exists():
            lines = [ln for ln in r.stderr.splitlines() if "Error" in ln or "error" in ln]
            raise ConversionError(f"litert-torch failed on {model.name}: {(lines[-1] if lines else r.stderr.strip()[-300:])[:300]}")
        meta = json.loads(r.stdout.strip().splitlines()[-1])
        model.cache["litert_torch_version"] = meta.get("litert_torch")
        return out.read_bytes()
