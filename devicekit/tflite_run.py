"""Run a .tflite on model inputs in the PyTorch layout, with (de)quantisation handled.

Shared by convert (error vs PyTorch), verify and the host bench. Needs only
ai_edge_litert and numpy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import InputError


class TFLiteRunner:
    def __init__(self, path: str | Path, threads: int = 1, xnnpack: bool = True):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        path = Path(path)
        if not path.exists():
            raise InputError(f"model file not found: {path}")
        self.xnnpack_error: str | None = None  # why XNNPACK could not take the model, if it could not
        try:
            self.interp = self._load(Interpreter, OpResolverType, path, threads, xnnpack)
        except (ValueError, RuntimeError) as exc:
            if not xnnpack or "XNNPack" not in str(exc) and "XNNPACK" not in str(exc):
                raise InputError(f"{path.name}: the LiteRT interpreter cannot load it ({_first(exc)})") from None
            # XNNPACK refused a node: run on the builtin kernels, and say so
            self.xnnpack_error = _first(exc)
            try:
                self.interp = self._load(Interpreter, OpResolverType, path, threads, False)
            except (ValueError, RuntimeError) as exc2:
                raise InputError(f"{path.name}: the LiteRT interpreter cannot load it ({_first(exc2)})") from None
        self.xnnpack = xnnpack and self.xnnpack_error is None
        self.inputs = self.interp.get_input_details()
        self.outputs = self.interp.get_output_details()

    @staticmethod
    def _load(Interpreter, OpResolverType, path, threads, xnnpack):
        resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        interp = Interpreter(model_path=str(path), num_threads=threads, experimental_op_resolver_type=resolver)
        interp.allocate_tensors()
        return interp

    def _to_input(self, x: np.ndarray, detail: dict) -> np.ndarray:
        shape = tuple(detail["shape"])
        if x.ndim == 4 and tuple(x.shape) != shape and tuple(x.transpose(0, 2, 3, 1).shape) == shape:
            x = x.transpose(0, 2, 3, 1)  # NCHW -> NHWC
        if tuple(x.shape) != shape:
            raise InputError(f"input shape {list(x.shape)} does not fit the model input {list(shape)}")
        dtype = detail["dtype"]
        if dtype in (np.int8, np.uint8, np.int16):
            scale, zp = detail["quantization"]
            info = np.iinfo(dtype)
            x = np.clip(np.round(x / scale + zp), info.min, info.max)
        return np.ascontiguousarray(x.astype(dtype))

    def _from_output(self, detail: dict) -> np.ndarray:
        y = self.interp.get_tensor(detail["index"])
        if detail["dtype"] in (np.int8, np.uint8, np.int16, np.int32) and detail["quantization"][0]:
            scale, zp = detail["quantization"]
            y = (y.astype(np.float32) - zp) * scale
        return y.astype(np.float32)

    def set_input(self, x: np.ndarray) -> None:
        self.interp.set_tensor(self.inputs[0]["index"], self._to_input(x, self.inputs[0]))

    def invoke(self) -> None:
        self.interp.invoke()

    def get_outputs(self) -> list[np.ndarray]:
        return [self._from_output(d) for d in self.outputs]

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        """One batch-1 NCHW (or NHWC) float input -> outputs as float32, in the model's output order."""
        self.set_input(x)
        self.invoke()
        return self.get_outputs()


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def match_outputs(tfl_outs: list[np.ndarray], ref_outs: list[np.ndarray]) -> list[np.ndarray]:
    """Reorder/reshape converted outputs to match the reference's by shape (converters may reorder them)."""
    out, used = [], set()
    for ref in ref_outs:
        for i, t in enumerate(tfl_outs):
            if i in used:
                continue
            if t.shape == ref.shape:
                out.append(t)
                used.add(i)
                break
            if t.size == ref.size and t.ndim == 4 and ref.ndim == 4 and t.transpose(0, 3, 1, 2).shape == ref.shape:
                out.append(t.transpose(0, 3, 1, 2))
                used.add(i)
                break
        else:
            raise InputError(f"no converted output matches the reference output of shape {list(ref.shape)}")
    return out
