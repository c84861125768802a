"""Read an ML Program (.mlpackage) into plain Python: ops, constants, weights.

No torch and no ``import coremltools``: the protobuf classes are loaded as a
stand-alone package from coremltools' install directory (see
``devicekit.modelfile.mlpackage``), and ``weights/weight.bin`` is read in
the MIL blob storage format:

* a 64-byte file header (``uint32 count, uint32 version`` + reserved);
* per blob, at the offset a ``blobFileValue`` names, a 64-byte metadata
  record: ``uint32 sentinel 0xDEADBEEF, uint32 dtype, uint64 size_in_bytes,
  uint64 data_offset, uint64 padding_bits`` + reserved; the data follows at
  ``data_offset``.

Sub-byte types (int4, uint1..uint6) are packed least significant bit first.
"""

from __future__ import annotations

import importlib
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from devicekit.errors import InputError

BLOB_SENTINEL = 0xDEADBEEF

# MIL DataType enum name -> (numpy dtype, bits); sub-byte types unpack to uint8/int8.
_DTYPES = {
    "BOOL": (np.bool_, 8),
    "FLOAT16": (np.float16, 16),
    "FLOAT32": (np.float32, 32),
    "FLOAT64": (np.float64, 64),
    "INT8": (np.int8, 8),
    "INT16": (np.int16, 16),
    "INT32": (np.int32, 32),
    "INT64": (np.int64, 64),
    "UINT8": (np.uint8, 8),
    "UINT16": (np.uint16, 16),
    "UINT32": (np.uint32, 32),
    "UINT64": (np.uint64, 64),
    "INT4": (np.int8, 4),
    "UINT1": (np.uint8, 1),
    "UINT2": (np.uint8, 2),
    "UINT3": (np.uint8, 3),
    "UINT4": (np.uint8, 4),
    "UINT6": (np.uint8, 6),
    "STRING": (object, 0),
}


@dataclass
class Operation:
    type: str
    name: str
    inputs: dict  # arg name -> list of ("var", name) | ("value", ndarray)
    outputs: list[tuple[str, str | None, tuple]]  # (name, dtype name, shape)
    attributes: dict
    has_blocks: bool = False


@dataclass
class Program:
    path: Path
    inputs: list[tuple[str, str, tuple]]  # function inputs: (name, dtype name, shape)
    operations: list[Operation]
    outputs: list[str]
    opset: str
    description: object  # the ModelDescription protobuf (image/tensor inputs, metadata)
    image_inputs: dict = field(default_factory=dict)  # input name -> "RGB" | "BGR" | "GRAYSCALE"
    metadata: dict = field(default_factory=dict)


def _pb():
    from devicekit.modelfile.mlpackage import _proto

    model_pb2 = _proto()
    pkg = model_pb2.__name__.rsplit(".", 1)[0]
    return model_pb2, importlib.import_module(f"{pkg}.MIL_pb2")


class _Blobs:
    def __init__(self, root: Path):
        self.root = root
        self.files: dict[str, bytes] = {}

    def read(self, file_name: str, offset: int, dtype_name: str, shape: tuple) -> np.ndarray:
        rel = file_name.replace("@model_path/", "")
        path = (self.root / "Data" / "com.apple.CoreML" / rel).resolve()
        if self.root.resolve() not in path.parents:
            raise InputError(f"{self.root.name}: weight file {file_name} points outside the package")
        if rel not in self.files:
            if not path.is_file():
                raise InputError(f"{self.root.name}: weight file {rel} is missing")
            self.files[rel] = path.read_bytes()
        data = self.files[rel]
        if offset + 64 > len(data):
            raise InputError(f"{self.root.name}: weight blob at offset {offset} is past the end of {rel}")
        sentinel, _dt, size, data_offset = struct.unpack_from("<IIQQ", data, offset)
        if sentinel != BLOB_SENTINEL:
            raise InputError(f"{self.root.name}: corrupt weight blob at offset {offset} of {rel} (bad sentinel)")
        if data_offset + size > len(data):
            raise InputError(f"{self.root.name}: weight blob at offset {offset} is truncated")
        return decode_bytes(data[data_offset : data_offset + size], dtype_name, shape)


def unpack_bits(raw: bytes | np.ndarray, nbits: int, count: int, signed: bool = False) -> np.ndarray:
    """Sub-byte values packed LSB first (the MIL convention) -> one value per element."""
    bits = np.unpackbits(np.frombuffer(bytes(raw), np.uint8), bitorder="little")[: count * nbits]
    vals = bits.reshape(count, nbits).astype(np.int32) @ (1 << np.arange(nbits, dtype=np.int32))
    if signed:
        vals = np.where(vals >= 1 << (nbits - 1), vals - (1 << nbits), vals)
        return vals.astype(np.int8)
    return vals.astype(np.uint8)


def decode_bytes(raw: bytes, dtype_name: str, shape: tuple) -> np.ndarray:
    np_dtype, bits = _DTYPES[dtype_name]
    count = int(np.prod(shape)) if shape else 1
    if bits < 8:
        return unpack_bits(raw, bits, count, signed=dtype_name == "INT4").reshape(shape)
    arr = np.frombuffer(raw, np_dtype)
    if arr.size < count:
        raise InputError(f"weight data of {arr.size} values for a tensor of {count}")
    return arr[:count].reshape(shape).copy()


def _type_of(vt, mil) -> tuple[str | None, tuple]:
    kind = vt.WhichOneof("type")
    if kind != "tensorType":
        return None, ()
    tt = vt.tensorType
    shape = tuple(int(d.constant.size) if d.WhichOneof("dimension") == "constant" else -1 for d in tt.dimensions)
    return mil.DataType.Name(tt.dataType), shape


def _value(v, mil, blobs: _Blobs):
    dtype_name, shape = _type_of(v.type, mil)
    which = v.WhichOneof("value")
    if which == "blobFileValue":
        return blobs.read(v.blobFileValue.fileName, int(v.blobFileValue.offset), dtype_name, shape)
    if which != "immediateValue" or v.immediateValue.WhichOneof("value") != "tensor":
        kind = v.immediateValue.WhichOneof("value") if which == "immediateValue" else which
        raise NotImplementedError(f"constant of kind {kind}")
    t = v.immediateValue.tensor
    kind = t.WhichOneof("value")
    if dtype_name == "STRING":
        vals = list(t.strings.values)
        return vals[0] if not shape and len(vals) == 1 else np.array(vals, dtype=object).reshape(shape)
    np_dtype = _DTYPES[dtype_name][0]
    if kind == "bytes":
        arr = decode_bytes(t.bytes.values, dtype_name, shape)
    else:
        vals = list(getattr(t, kind).values) if kind else []
        arr = np.array(vals, dtype=np_dtype).reshape(shape) if vals or shape else np.zeros(shape, np_dtype)
    return arr


def load_program(path: str | Path) -> Program:
    """Parse ``path`` (.mlpackage) into a ``Program``; bad packages raise ``InputError``."""
    from google.protobuf.message import DecodeError

    from devicekit.modelfile.mlpackage import _spec_path

    root = Path(path)
    if not root.exists():
        raise InputError(f"model not found: {root}")
    if not root.is_dir():
        raise InputError(f"{root.name}: an .mlpackage must be a directory")
    spec_file = _spec_path(root)
    model_pb2, mil = _pb()
    spec = model_pb2.Model()
    try:
        spec.ParseFromString(spec_file.read_bytes())
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise InputError(f"{root.name}: corrupt CoreML spec ({type(exc).__name__})") from None
    if spec.WhichOneof("Type") != "mlProgram":
        raise InputError(f"{root.name}: not an ML Program (type {spec.WhichOneof('Type')}); only mlprogram packages run here")
    fn = spec.mlProgram.functions.get("main")
    if fn is None:
        raise InputError(f"{root.name}: the ML program has no main function")
    block = fn.block_specializations[fn.opset] if fn.opset in fn.block_specializations else next(iter(fn.block_specializations.values()))
    blobs = _Blobs(root)
    ops = []
    for op in block.operations:
        inputs = {}
        for key, arg in op.inputs.items():
            inputs[key] = [("var", b.name) if b.WhichOneof("binding") == "name" else ("value", _value(b.value, mil, blobs)) for b in arg.arguments]
        attrs = {}
        for key, val in op.attributes.items():
            if key == "name":
                continue
            attrs[key] = _value(val, mil, blobs)
        outs = [(o.name, *_type_of(o.type, mil)) for o in op.outputs]
        name = op.attributes["name"].immediateValue.tensor.strings.values[0] if "name" in op.attributes else (outs[0][0] if outs else op.type)
        ops.append(Operation(op.type, name, inputs, outs, attrs, has_blocks=len(op.blocks) > 0))
    images = {}
    for d in spec.description.input:
        if d.type.WhichOneof("Type") == "imageType":
            images[d.name] = model_pb2.ImageFeatureType.ColorSpace.Name(d.type.imageType.colorSpace)
    meta = dict(spec.description.metadata.userDefined)
    return Program(root, [(i.name, *_type_of(i.type, mil)) for i in fn.inputs], ops, list(block.outputs), fn.opset, spec.description, images, meta)


def numpy_dtype(name: str | None):
    if name is None or name not in _DTYPES or _DTYPES[name][1] < 8 and name != "INT4":
        return None
    return _DTYPES[name][0]


if __name__ == "__main__":  # pragma: no cover - debugging aid
    p = load_program(sys.argv[1])
    for o in p.operations:
        print(o.type, o.name, [n for n, *_ in o.outputs])
