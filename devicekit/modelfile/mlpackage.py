"""Read an .mlpackage (CoreML) into ModelFacts from its protobuf spec, without importing coremltools.

``import coremltools`` pulls in torch and tensorflow when they are installed
(seconds, and it fails where they are broken). The generated ``*_pb2``
modules need only protobuf, so they are loaded as a stand-alone package from
coremltools' install directory (found without executing coremltools).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import types
from pathlib import Path

from ..errors import EnvironmentMissing, InputError
from .facts import ModelFacts, Op, Tensor

_PKG = "_devicekit_coreml_proto"
# CoreML.Specification.MILSpec.DataType (MIL.proto in coremltools 9.0)
_MIL_DTYPES = {
    1: "bool",
    2: "string",
    10: "float16",
    11: "float32",
    12: "float64",
    13: "bfloat16",
    21: "int8",
    22: "int16",
    23: "int32",
    24: "int64",
    25: "int4",
    31: "uint8",
    32: "uint16",
    33: "uint32",
    34: "uint64",
    35: "int4",
    40: "int8",
    41: "int8",
}


def _proto():
    if "coremltools.proto.Model_pb2" in sys.modules:  # already loaded by the converter: reuse it
        return sys.modules["coremltools.proto.Model_pb2"]
    if f"{_PKG}.Model_pb2" in sys.modules:
        return sys.modules[f"{_PKG}.Model_pb2"]
    try:
        spec = importlib.util.find_spec("coremltools")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise EnvironmentMissing("reading .mlpackage needs the CoreML protobuf definitions from coremltools", hint="pip install coremltools==9.0")
    pkg = types.ModuleType(_PKG)
    pkg.__path__ = [str(Path(list(spec.submodule_search_locations)[0]) / "proto")]
    sys.modules[_PKG] = pkg
    return importlib.import_module(f"{_PKG}.Model_pb2")


def _spec_path(root: Path) -> Path:
    manifest = root / "Manifest.json"
    if not manifest.is_file():
        raise InputError(f"{root.name}: not an .mlpackage (Manifest.json missing)")
    try:
        info = json.loads(manifest.read_text())
        entry = info["itemInfoEntries"][info["rootModelIdentifier"]]
        rel = entry["path"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{root.name}: unreadable Manifest.json ({type(exc).__name__}: {exc})") from None
    p = (root / "Data" / rel).resolve()
    if root.resolve() not in p.parents:
        raise InputError(f"{root.name}: Manifest.json points outside the package ({rel})")
    if not p.is_file():
        raise InputError(f"{root.name}: the model spec {rel} named in Manifest.json is missing")
    return p


def read_mlpackage(root: Path) -> ModelFacts:
    from google.protobuf.message import DecodeError

    if not root.is_dir():
        raise InputError(f"{root.name}: an .mlpackage must be a directory")
    spec_file = _spec_path(root)
    data = spec_file.read_bytes()
    if not data:
        raise InputError(f"{root.name}: the model spec {spec_file.name} is empty")
    Model = _proto()
    spec = Model.Model()
    try:
        spec.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise InputError(f"{root.name}: corrupt CoreML spec ({type(exc).__name__}: {str(exc)[:100]})") from None
    from ..fsutil import path_size

    kind = spec.WhichOneof("Type")
    tensors: list[Tensor] = []
    index: dict[str, int] = {}
    ops: list[Op] = []
    notes = []

    def add(name, shape=(), dtype="float32"):
        if name not in index:
            index[name] = len(tensors)
            tensors.append(Tensor(index=len(tensors), name=name, shape=shape, dtype=dtype))
        return index[name]

    if kind == "mlProgram":
        entry = spec.description.defaultFunctionName or "main"  # the function CoreML runs
        fn = spec.mlProgram.functions.get(entry)
        if fn is None:
            raise InputError(f"{root.name}: CoreML ML program has no function {entry!r} (CoreML runs main, or the description's defaultFunctionName)")
        if not fn.block_specializations:
            raise InputError(f"{root.name}: CoreML ML program function {entry!r} has no block")
        block = fn.block_specializations[fn.opset] if fn.opset in fn.block_specializations else next(iter(fn.block_specializations.values()))
        for inp in fn.inputs:
            add(inp.name, *_value_type(inp.type))
        for i, op in enumerate(block.operations):
            ins = tuple(add(b.name) for arg in op.inputs.values() for b in arg.arguments if b.name)
            outs = tuple(add(o.name, *_value_type(o.type)) for o in op.outputs)
            if op.type in ("const", "constexpr_affine_dequantize", "constexpr_blockwise_shift_scale", "constexpr_lut_to_dense"):
                for o in outs:
                    tensors[o].const = True
                    tensors[o].const_bytes = tensors[o].nbytes
            attrs = {f"input:{k}": add(arg.arguments[0].name) for k, arg in op.inputs.items() if arg.arguments and arg.arguments[0].name}
            ops.append(Op(index=i, op=op.type, version=spec.specificationVersion, inputs=ins, outputs=outs, kind="mil", attrs=attrs))
        inputs = tuple(index[i.name] for i in fn.inputs)
        outputs = tuple(add(o) for o in block.outputs)
        opset = fn.opset
    elif kind in ("neuralNetwork", "neuralNetworkClassifier", "neuralNetworkRegressor"):
        nn = getattr(spec, kind)
        for i, layer in enumerate(nn.layers):
            ins = tuple(add(n) for n in layer.input)
            outs = tuple(add(n) for n in layer.output)
            ops.append(
                Op(
                    index=i,
                    op=layer.WhichOneof("layer") or "?",
                    version=spec.specificationVersion,
                    inputs=ins,
                    outputs=outs,
                    kind="custom" if layer.WhichOneof("layer") == "custom" else "mil",
                )
            )
        inputs = tuple(add(d.name) for d in spec.description.input)
        outputs = tuple(add(d.name) for d in spec.description.output)
        opset = "neuralnetwork"
        notes.append("neuralNetwork spec: weights are inline, per-layer weight sizes not broken down")
    else:
        raise InputError(f"{root.name}: CoreML model type {kind!r} is not a neural network")
    weights_dir = root / "Data" / "com.apple.CoreML" / "weights"
    weight_file_bytes = path_size(weights_dir) if weights_dir.exists() else 0
    flexible = any(
        d.type.multiArrayType.WhichOneof("ShapeFlexibility") for d in spec.description.input if d.type.WhichOneof("Type") == "multiArrayType"
    )
    return ModelFacts(
        path=str(root),
        format="mlpackage",
        file_bytes=path_size(root),
        tensors=tensors,
        ops=ops,
        inputs=inputs,
        outputs=outputs,
        notes=notes,
        metadata={
            "spec_version": spec.specificationVersion,
            "model_type": kind,
            "opset": opset,
            "weight_file_bytes": weight_file_bytes,
            "flexible_input_shapes": bool(flexible),
        },
    )


def _value_type(vt) -> tuple[tuple[int, ...], str]:
    if vt.WhichOneof("type") != "tensorType":
        return (), "float32"
    tt = vt.tensorType
    shape = tuple(int(d.constant.size) if d.WhichOneof("dimension") == "constant" else -1 for d in tt.dimensions)
    return shape, _MIL_DTYPES.get(tt.dataType, "float32")
