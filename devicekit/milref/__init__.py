"""A reference interpreter of MIL ops in numpy: runs a CoreML ML Program on Linux.

``MLModel.predict`` needs macOS. So that a converted ``.mlpackage`` is never
unverified here, this module runs the program itself, op by op, from the
package's own ``model.mlmodel`` and ``weights/weight.bin`` (no torch, no
``import coremltools``: only the protobuf classes). An op it does not cover
raises ``OpNotCovered`` -- a "not verified" result, never a silent pass.

Public API:

    run_mlpackage(path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]
    MLPackageRunner(path).run(x)   # normalised NCHW input, like TFLiteRunner
    covered_ops() -> list[str];  uncovered_ops(path) -> list[str]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from devicekit.errors import DevicekitError, InputError

from .ops import OPS, Args
from .program import Program, load_program, numpy_dtype

__all__ = ["run_mlpackage", "MLPackageRunner", "OpNotCovered", "covered_ops", "uncovered_ops", "load_program", "run_program"]


class OpNotCovered(DevicekitError):
    """The reference interpreter has no implementation of an op: the model is NOT verified."""

    exit_code = 1

    def __init__(self, op: str, layer: str | None):
        where = f" (layer {layer})" if layer else ""
        super().__init__(
            f"not verified: op {op}{where} is not covered by the MIL reference interpreter",
            hint="verify on macOS with coremltools' predict, or add the op to devicekit/milref/ops.py",
        )
        self.op, self.layer = op, layer


def covered_ops() -> list[str]:
    return sorted(OPS)


def uncovered_ops(path: str | Path) -> list[str]:
    """Op types in the package that the interpreter cannot run (empty: every op is covered)."""
    prog = load_program(path)
    return sorted({o.type for o in prog.operations if o.type not in OPS or o.has_blocks})


def run_program(prog: Program, inputs: dict[str, np.ndarray], keep: bool = False) -> dict[str, np.ndarray]:
    """Run ``prog``'s main function; ``keep=True`` returns every intermediate value too."""
    env: dict[str, object] = {}
    for name, dtype, shape in prog.inputs:
        if name not in inputs:
            raise InputError(f"{prog.path.name}: missing input {name!r} (inputs: {', '.join(n for n, *_ in prog.inputs)})")
        x = np.asarray(inputs[name])
        if tuple(x.shape) != tuple(shape) and -1 not in shape:
            raise InputError(f"{prog.path.name}: input {name!r} has shape {list(x.shape)}, the model takes {list(shape)}")
        dt = numpy_dtype(dtype)
        env[name] = x.astype(dt) if dt is not None else x
    extra = set(inputs) - {n for n, *_ in prog.inputs}
    if extra:
        raise InputError(f"{prog.path.name}: unknown input(s) {', '.join(sorted(extra))}")
    for op in prog.operations:
        fn = OPS.get(op.type)
        if fn is None or op.has_blocks:
            raise OpNotCovered(op.type, op.name)
        values = {k: [env[ref] if kind == "var" else ref for kind, ref in binds] for k, binds in op.inputs.items()}
        try:
            result = fn(Args(values, op.attributes), op.attributes)
        except NotImplementedError as exc:
            raise OpNotCovered(f"{op.type} ({exc})" if str(exc) else op.type, op.name) from None
        results = result if isinstance(result, tuple) else (result,)
        if len(results) != len(op.outputs):
            raise OpNotCovered(f"{op.type} with {len(op.outputs)} outputs", op.name)
        for (name, dtype, _shape), val in zip(op.outputs, results):
            dt = numpy_dtype(dtype)
            val = np.asarray(val)
            env[name] = val.astype(dt) if dt is not None and val.dtype != dt else val
    if keep:
        return {k: v for k, v in env.items() if isinstance(v, np.ndarray)}
    return {name: np.asarray(env[name]) for name in prog.outputs}


def run_mlpackage(path: str | Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run the ``.mlpackage`` at ``path`` on ``inputs`` (name -> array) and return its outputs by name.

    An image input takes the pixel tensor the CoreML runtime would make from
    the ``CVPixelBuffer``: float NCHW [1, C, H, W], values 0-255, in the
    model's colour order. Raises ``OpNotCovered`` for an op the interpreter
    does not implement and ``InputError`` for a bad package or input.
    """
    return run_program(load_program(path), inputs)


class MLPackageRunner:
    """Same shape as ``TFLiteRunner``: ``run(x)`` takes the normalised NCHW model input.

    For an image input, ``x`` is turned back into pixels with the package's
    normalisation (``devicekit.mean``/``devicekit.std`` metadata, else the
    manifest next to it), so the same input reaches both the CoreML program
    and PyTorch.
    """

    path_kind = "reference interpreter (devicekit.milref, numpy)"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.program = load_program(self.path)
        missing = sorted({o.type for o in self.program.operations if o.type not in OPS or o.has_blocks})
        if missing:  # fail before running anything: the whole model is not verified
            raise OpNotCovered(", ".join(missing), None)
        self.input_name = self.program.inputs[0][0]
        self.mean = self.std = None
        if self.input_name in self.program.image_inputs:
            self.mean, self.std = self._normalisation()

    def _normalisation(self) -> tuple[np.ndarray, np.ndarray]:
        import json

        meta = self.program.metadata
        if "devicekit.mean" in meta and "devicekit.std" in meta:
            mean, std = json.loads(meta["devicekit.mean"]), json.loads(meta["devicekit.std"])
        else:
            from devicekit.manifest import read_manifest

            m = read_manifest(self.path)
            mean, std = m.preprocess["mean"], m.preprocess["std"]
        shape = (1, -1, 1, 1)
        return np.asarray(mean, np.float32).reshape(shape), np.asarray(std, np.float32).reshape(shape)

    def run_pixels(self, pixels: np.ndarray) -> list[np.ndarray]:
        """Image models only: NCHW pixels 0-255 in the model's colour order."""
        outs = run_program(self.program, {self.input_name: np.asarray(pixels, np.float32)})
        return [np.asarray(outs[n], np.float32) for n in self.program.outputs]

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        x = np.asarray(x, np.float32)
        if self.mean is not None:
            return self.run_pixels(x * self.std + self.mean)
        outs = run_program(self.program, {self.input_name: x})
        return [np.asarray(outs[n], np.float32) for n in self.program.outputs]
