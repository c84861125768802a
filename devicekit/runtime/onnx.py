"""An .onnx on onnxruntime's CPU provider, with the same ``run(x)`` as the other runners."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import EnvironmentMissing, InputError, first_line


class OnnxRunner:
    delegate = "cpu"
    delegate_error = None

    def __init__(self, path: str | Path, threads: int = 1):
        try:
            import onnxruntime as ort
        except ImportError:
            raise EnvironmentMissing("running a .onnx model needs onnxruntime, which is not installed", hint="pip install onnxruntime") from None
        path = Path(path)
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        try:
            self.sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise InputError(f"{path.name}: onnxruntime cannot load it ({first_line(exc)})") from None
        self.input = self.sess.get_inputs()[0]

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        return [np.asarray(y, np.float32) for y in self.sess.run(None, {self.input.name: np.asarray(x, np.float32)})]
