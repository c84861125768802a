"""The one LiteRT runner: a .tflite on model inputs in the PyTorch layout, (de)quantisation handled.

Delegate policy, explicit and reported: ``delegate="xnnpack"`` is what a
phone's LiteRT CPU path does (the default resolver, XNNPACK applied); when
XNNPACK cannot take the model the runner raises ``DelegateError`` with
LiteRT's reason, unless the caller asked for ``fallback=True``, in which
case it runs the builtin kernels and says so in ``delegate`` and
``delegate_error``. ``delegate="cpu"`` runs the builtin kernels only.
Needs only ai_edge_litert and numpy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError, UsageError, first_line

DELEGATES = ("xnnpack", "cpu")


class DelegateError(InputError):
    """The delegate a phone would apply cannot take this model (LiteRT's reason in the message)."""


class TFLiteRunner:
    """``TFLiteRunner(path_or_bytes, threads=1, delegate="xnnpack", fallback=False)``.

    ``delegate`` after construction is what actually runs; ``delegate_error``
    is LiteRT's reason when XNNPACK was asked for and could not be used.
    """

    def __init__(self, model: str | Path | bytes, threads: int = 1, delegate: str = "xnnpack", fallback: bool = False,
                 name: str | None = None):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        if delegate not in DELEGATES:
            raise UsageError(f"unknown TFLite delegate {delegate!r} here (known: {', '.join(DELEGATES)})")
        if isinstance(model, (bytes, bytearray)):
            source: dict[str, bytes | str] = {"model_content": bytes(model)}
            self.name = name or "model.tflite"
        else:
            path = Path(model)
            if not path.is_file():
                raise InputError(f"{path} is a directory, not a model file" if path.is_dir() else f"model file not found: {path}")
            source, self.name = {"model_path": str(path)}, name or path.name
        self.delegate_error: str | None = None

        def load(xnnpack: bool):
            resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            interp = Interpreter(**source, num_threads=threads, experimental_op_resolver_type=resolver)
            interp.allocate_tensors()
            return interp

        try:
            self.interp = load(delegate == "xnnpack")
            self.delegate = delegate
        except MemoryError as exc:  # std::bad_alloc: shapes that ask for more memory than there is
            raise InputError(f"{self.name}: the LiteRT interpreter cannot load it (out of memory: {first_line(exc)})") from None
        except (ValueError, RuntimeError) as exc:
            reason = first_line(exc)
            if delegate != "xnnpack" or "xnnpack" not in reason.lower():
                raise InputError(f"{self.name}: the LiteRT interpreter cannot load it ({reason})") from None
            if not fallback:
                raise DelegateError(
                    f"{self.name}: XNNPACK, LiteRT's default CPU delegate on phones, cannot run it ({reason})",
                    hint=f"devicekit check {self.name} lists the ops XNNPACK refuses; reconvert with devicekit convert",
                ) from None
            self.delegate_error = reason
            try:
                self.interp = load(False)
            except (ValueError, RuntimeError, MemoryError) as exc2:
                raise InputError(f"{self.name}: the LiteRT interpreter cannot load it ({first_line(exc2)})") from None
            self.delegate = "cpu"
        try:
            self.inputs = self.interp.get_input_details()
            self.outputs = self.interp.get_output_details()
        except (ValueError, RuntimeError) as exc:  # e.g. a graph output -1: the C++ runtime runs it, the API cannot say
            raise InputError(f"{self.name}: LiteRT cannot describe its inputs and outputs ({first_line(exc)})") from None
        if not self.inputs:
            raise InputError(f"{self.name}: the model has no input tensor")

    @property
    def input_quantization(self) -> tuple[float, int] | None:
        d = self.inputs[0]
        return tuple(d["quantization"]) if d["dtype"] in (np.int8, np.uint8, np.int16) else None

    def to_input(self, x: np.ndarray, detail: dict | None = None) -> np.ndarray:
        """A float NCHW (or NHWC) batch -> the input tensor: layout, dtype and quantisation (round half to even)."""
        detail = detail or self.inputs[0]
        shape = tuple(detail["shape"])
        if x.ndim == 4 and tuple(x.shape) != shape and tuple(x.transpose(0, 2, 3, 1).shape) == shape:
            x = x.transpose(0, 2, 3, 1)  # NCHW -> NHWC
        if tuple(x.shape) != shape:
            raise InputError(f"input shape {list(x.shape)} does not fit the model input {list(shape)}")
        dtype = detail["dtype"]
        if dtype in (np.int8, np.uint8, np.int16):
            scale, zp = detail["quantization"]
            info = np.iinfo(dtype)
            x = np.clip(np.rint(x / scale + zp), info.min, info.max)
        return np.ascontiguousarray(x.astype(dtype))

    def _from_output(self, detail: dict) -> np.ndarray:
        y = self.interp.get_tensor(detail["index"])
        if detail["dtype"] in (np.int8, np.uint8, np.int16, np.int32) and detail["quantization"][0]:
            scale, zp = detail["quantization"]
            y = (y.astype(np.float32) - zp) * scale
        return y.astype(np.float32)

    def set_tensor(self, x: np.ndarray) -> None:
        """Set the input tensor as is (already in the model's layout and dtype: the bench loop's path)."""
        self.interp.set_tensor(self.inputs[0]["index"], x)

    def set_input(self, x: np.ndarray) -> None:
        self.set_tensor(self.to_input(x))

    def invoke(self) -> None:
        try:
            self.interp.invoke()
        except (RuntimeError, ValueError, MemoryError) as exc:  # a kernel that refuses this input
            raise InputError(f"{self.name}: LiteRT failed to run it ({first_line(exc)})") from None

    def get_outputs(self) -> list[np.ndarray]:
        return [self._from_output(d) for d in self.outputs]

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        """One batch-1 NCHW (or NHWC) float input -> outputs as float32, in the model's output order."""
        self.set_input(x)
        self.invoke()
        return self.get_outputs()
