"""Seeded, deterministic mutations of model files: ``mutants(seed_file, n, seed)`` -> [(name, kind, writer)].

Byte-level operators work on any file: ``bitflip`` (1-8 bits), ``byte`` (1-4 bytes set to interesting or random
values), ``truncate`` (cut anywhere, or just after a structure starts), ``chunk`` (4-64 bytes overwritten with
zeros, 0xff or noise). Structure-aware operators know the format:

- .tflite: the flatbuffer is walked (devicekit's bounds-checked reader) to find the position of every index
  (tensor -> buffer, operator -> opcode, operator / graph / signature -> tensor), vector length, shape element,
  enum (tensor type, builtin code, options type) and version field; one is set to an out-of-range or boundary
  value (count, count + 1, 2**24 - 1, 2**31 - 1, -1, -2**31, ...).
- .onnx: the ModelProto is edited (op types, input names, dims, data types, raw data, opset and IR versions,
  attributes) and serialised again, or its bytes are mutated.
- .mlpackage: the copy's Manifest.json (JSON fields, paths that leave the package), the model spec (protobuf
  bytes and fields) or weight.bin (truncated, flipped) is mutated.

Every mutant is a pure function of (seed file, index, seed): the same call writes the same bytes.
"""

from __future__ import annotations

import json
import random
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

I32_EDGES = [0, 1, -1, -2, 2**31 - 1, -(2**31), 2**24 - 1, 65536, 0x7F, 0xFF]
U8_EDGES = [0, 1, 0x7F, 0x80, 0xFE, 0xFF]


@dataclass(frozen=True)
class Field:
    kind: str  # index | length | shape | enum | version | offset
    pos: int
    fmt: str  # struct format of the field (<i, <I, <b, <B, <Q)
    what: str  # e.g. "Tensor[3].buffer (of 89)"
    count: int = 0  # the size of what an index points into / a vector's own length


# ------------------------------------------------------------------------------------------------ tflite

def tflite_fields(data: bytes) -> list[Field]:
    """Positions of the structural fields of a sound .tflite (the walk uses devicekit's bounds-checked reader)."""
    from devicekit.modelfile._fb import Buf

    buf = Buf(data)
    out: list[Field] = []
    model = buf.root("Model")

    def scalar(tab, slot, kind, fmt, what, count=0):
        p = tab._field(slot)
        if p:
            out.append(Field(kind, p, fmt, what, count))

    def vector(tab, slot, elem_kind, fmt, what, count=0):
        p = tab._indirect(slot)
        if not p:
            return
        n = buf.u32(p)
        out.append(Field("length", p, "<I", f"{what} length", n))
        for i in range(min(n, 64)):
            out.append(Field(elem_kind, p + 4 + 4 * i, fmt, f"{what}[{i}]", count))

    codes = model.tables(1, "OperatorCode")
    buffers = model.tables(4, "Buffer")
    scalar(model, 0, "version", "<I", "Model.version")
    for i, c in enumerate(codes):
        scalar(c, 0, "enum", "<b", f"OperatorCode[{i}].deprecated_builtin_code")
        scalar(c, 2, "version", "<i", f"OperatorCode[{i}].version")
        scalar(c, 3, "enum", "<i", f"OperatorCode[{i}].builtin_code")
    for i, b in enumerate(buffers[:256]):
        p = b._indirect(0)
        if p:
            out.append(Field("length", p, "<I", f"Buffer[{i}].data length", buf.u32(p)))
        scalar(b, 1, "offset", "<Q", f"Buffer[{i}].offset")
        scalar(b, 2, "offset", "<Q", f"Buffer[{i}].size")
    for si, sg in enumerate(model.tables(2, "SubGraph")):
        tensors = sg.tables(0, "Tensor")
        nt = len(tensors)
        vector(sg, 1, "index", "<i", f"SubGraph[{si}].inputs", nt)
        vector(sg, 2, "index", "<i", f"SubGraph[{si}].outputs", nt)
        for ti, t in enumerate(tensors[:512]):
            vector(t, 0, "shape", "<i", f"Tensor[{ti}].shape")
            scalar(t, 1, "enum", "<b", f"Tensor[{ti}].type")
            scalar(t, 2, "index", "<I", f"Tensor[{ti}].buffer", len(buffers))
            vector(t, 7, "shape", "<i", f"Tensor[{ti}].shape_signature")
            q = t.table(4, "Quantization")
            if q is not None:
                for slot, name in ((2, "scale"), (3, "zero_point")):
                    p = q._indirect(slot)
                    if p:
                        out.append(Field("length", p, "<I", f"Tensor[{ti}].quantization.{name} length", buf.u32(p)))
                scalar(q, 6, "index", "<i", f"Tensor[{ti}].quantization.quantized_dimension", len(t.numbers(0, "i32")))
        for oi, o in enumerate(sg.tables(3, "Operator")[:512]):
            scalar(o, 0, "index", "<I", f"Operator[{oi}].opcode_index", len(codes))
            vector(o, 1, "index", "<i", f"Operator[{oi}].inputs", nt)
            vector(o, 2, "index", "<i", f"Operator[{oi}].outputs", nt)
            scalar(o, 3, "enum", "<B", f"Operator[{oi}].builtin_options_type")
    for i, m in enumerate(model.tables(6, "Metadata")):
        scalar(m, 1, "index", "<I", f"Metadata[{i}].buffer", len(buffers))
    for i, sd in enumerate(model.tables(7, "SignatureDef")):
        for slot, name in ((0, "inputs"), (1, "outputs")):
            for k, tm in enumerate(sd.tables(slot, "TensorMap")):
                scalar(tm, 1, "index", "<I", f"SignatureDef[{i}].{name}[{k}].tensor_index")
        scalar(sd, 4, "index", "<I", f"SignatureDef[{i}].subgraph_index", 1)
    return out


def _edge_values(f: Field, rng: random.Random) -> int:
    if f.fmt in ("<b", "<B"):
        v = rng.choice(U8_EDGES + [rng.randrange(256)])
        return v - 256 if f.fmt == "<b" and v > 127 else v
    if f.kind == "index":
        v = rng.choice([f.count, f.count + 1, 2**24 - 1, 2**31 - 1, -1, -2, -(2**31), 0xFFFF,
                        rng.randrange(max(f.count, 1))])
    elif f.kind == "length":
        v = rng.choice([0, max(f.count - 1, 0), f.count + 1, 2 * f.count + 1, 2**31 - 1, 2**32 - 1, 2**28])
    elif f.kind == "shape":
        v = rng.choice([0, -1, -2, 2**31 - 1, 2**32 - 1, 65536, 3, rng.randrange(1, 5000)])
    elif f.kind == "enum":
        v = rng.choice([-1, 0, 255, 256, 1000, 2**31 - 1, rng.randrange(0, 220)])
    elif f.kind == "offset":
        v = rng.choice([0, 1, 2, 2**32, 2**63 - 1, rng.randrange(1, 1 << 24)])
    else:  # version
        v = rng.choice(I32_EDGES + [999])
    lo, hi = {"<i": (-(2**31), 2**31 - 1), "<I": (0, 2**32 - 1), "<Q": (0, 2**64 - 1)}[f.fmt]
    return v % (hi + 1) if f.fmt in ("<I", "<Q") and v < 0 else max(lo, min(hi, v))


def mutate_field(data: bytes, fields: list[Field], rng: random.Random) -> tuple[bytes, str]:
    f = rng.choice(fields)
    v = _edge_values(f, rng)
    out = bytearray(data)
    struct.pack_into(f.fmt, out, f.pos, v)
    return bytes(out), f"{f.kind}: {f.what} = {v}"


# ------------------------------------------------------------------------------------------------ bytes

def mutate_bytes(data: bytes, rng: random.Random, op: str, anchors: list[int] | None = None) -> tuple[bytes, str]:
    d = bytearray(data)
    n = len(d)
    if op == "bitflip":
        k = rng.randint(1, 8)
        for _ in range(k):
            p = rng.randrange(n)
            d[p] ^= 1 << rng.randrange(8)
        return bytes(d), f"bitflip x{k}"
    if op == "byte":
        k = rng.randint(1, 4)
        for _ in range(k):
            d[rng.randrange(n)] = rng.choice(U8_EDGES + [rng.randrange(256)])
        return bytes(d), f"byte x{k}"
    if op == "truncate":
        if anchors and rng.random() < 0.5:
            cut = min(max(1, rng.choice(anchors) + rng.randrange(8)), n - 1)
        else:
            cut = rng.randrange(1, n)
        return bytes(d[:cut]), f"truncate at {cut} of {n}"
    if op == "chunk":
        size = rng.randint(4, 64)
        p = rng.randrange(max(1, n - size))
        fill = rng.choice(["zero", "ff", "noise"])
        blob = bytes(size) if fill == "zero" else (b"\xff" * size if fill == "ff" else rng.randbytes(size))
        d[p:p + size] = blob[: max(0, min(size, n - p))]
        return bytes(d), f"chunk {fill} {size} B at {p}"
    raise ValueError(op)


# ------------------------------------------------------------------------------------------------ onnx

ONNX_OPS = ["Conv", "Relu", "Add", "MatMul", "Reshape", "Gather", "Softmax", "Foo", "", "Resize", "Slice", "Concat"]


def mutate_onnx(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    import onnx

    m = onnx.load_model_from_string(data)
    g = m.graph
    choices = ["op_type", "input_name", "init_dims", "init_dtype", "raw_data", "io_dims", "opset", "ir", "attr",
               "drop_node", "dup_output", "elem_type"]
    what = rng.choice(choices)
    if what == "op_type" and g.node:
        n = rng.choice(g.node)
        n.op_type = rng.choice(ONNX_OPS)
    elif what == "input_name" and g.node:
        n = rng.choice(g.node)
        if n.input:
            n.input[rng.randrange(len(n.input))] = rng.choice(["missing", "", n.output[0] if n.output else "x"])
    elif what == "init_dims" and g.initializer:
        t = rng.choice(g.initializer)
        if t.dims:
            t.dims[rng.randrange(len(t.dims))] = rng.choice([0, -1, 2**31 - 1, 2**40, 3])
    elif what == "init_dtype" and g.initializer:
        rng.choice(g.initializer).data_type = rng.choice([0, 2, 8, 13, 16, 17, 30, 99])
    elif what == "raw_data" and g.initializer:
        t = rng.choice(g.initializer)
        t.raw_data = t.raw_data[: rng.randrange(max(1, len(t.raw_data)))]
    elif what == "io_dims":
        vi = rng.choice(list(g.input) + list(g.output))
        dims = vi.type.tensor_type.shape.dim
        if dims:
            dims[rng.randrange(len(dims))].dim_value = rng.choice([0, -5, 2**31 - 1, 2**40, 7])
    elif what == "opset" and m.opset_import:
        m.opset_import[0].version = rng.choice([0, 1, 6, 99, 2**31 - 1])
    elif what == "ir":
        m.ir_version = rng.choice([0, 1, 99, 2**40])
    elif what == "attr" and g.node:
        n = rng.choice(g.node)
        if n.attribute:
            a = rng.choice(n.attribute)
            if a.ints:
                a.ints[rng.randrange(len(a.ints))] = rng.choice([0, -1, 2**31 - 1, 1000])
            else:
                a.i = rng.choice([0, -1, 2**31 - 1, 1000])
    elif what == "drop_node" and g.node:
        del g.node[rng.randrange(len(g.node))]
    elif what == "dup_output" and len(g.node) > 1:
        a, b = rng.sample(range(len(g.node)), 2)
        if g.node[a].output and g.node[b].output:
            g.node[b].output[0] = g.node[a].output[0]
    elif what == "elem_type":
        vi = rng.choice(list(g.input) + list(g.output))
        vi.type.tensor_type.elem_type = rng.choice([0, 8, 12, 17, 99])
    return m.SerializeToString(), f"onnx {what}"


# ------------------------------------------------------------------------------------------------ mlpackage

def _mlpackage_parts(root: Path) -> tuple[Path, Path, Path | None]:
    info = json.loads((root / "Manifest.json").read_text())
    spec = root / "Data" / info["itemInfoEntries"][info["rootModelIdentifier"]]["path"]
    weights = next(iter(sorted((root / "Data").rglob("weight.bin"))), None)
    return root / "Manifest.json", spec, weights


def mutate_mlpackage(src: Path, dst: Path, rng: random.Random) -> str:
    """Copy ``src`` to ``dst`` and damage one part of the copy."""
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    manifest, spec, weights = _mlpackage_parts(dst)
    part = rng.choice(["manifest", "spec", "spec", "spec_field", "weights"] if weights else ["manifest", "spec", "spec_field"])
    if part == "manifest":
        info = json.loads(manifest.read_text())
        edit = rng.choice(["bytes", "path_out", "path_abs", "root_id", "no_entries", "path_missing"])
        if edit == "bytes":
            data, how = mutate_bytes(manifest.read_bytes(), rng, rng.choice(["bitflip", "byte", "truncate", "chunk"]))
            manifest.write_bytes(data)
            return f"Manifest.json {how}"
        entry = info["itemInfoEntries"][info["rootModelIdentifier"]]
        if edit == "path_out":
            entry["path"] = "../../../../etc/hostname"
        elif edit == "path_abs":
            entry["path"] = "/etc/hostname"
        elif edit == "root_id":
            info["rootModelIdentifier"] = "nope"
        elif edit == "no_entries":
            info["itemInfoEntries"] = []
        else:
            entry["path"] = "com.apple.CoreML/missing.mlmodel"
        manifest.write_text(json.dumps(info))
        return f"Manifest.json {edit}"
    if part == "spec":
        data, how = mutate_bytes(spec.read_bytes(), rng, rng.choice(["bitflip", "byte", "truncate", "chunk"]))
        spec.write_bytes(data)
        return f"spec {how}"
    if part == "spec_field":
        return _mutate_spec_field(spec, rng)
    data, how = mutate_bytes(weights.read_bytes(), rng, rng.choice(["bitflip", "truncate", "chunk"]), anchors=[64, 128])
    weights.write_bytes(data)
    return f"weight.bin {how}"


def _mutate_spec_field(spec_file: Path, rng: random.Random) -> str:
    from devicekit.modelfile.mlpackage import _proto

    Model = _proto()
    spec = Model.Model()
    spec.ParseFromString(spec_file.read_bytes())
    what = rng.choice(["spec_version", "input_shape", "op_type", "blob_offset", "blob_path", "main"])
    if what == "spec_version":
        spec.specificationVersion = rng.choice([0, 1, 999, 2**31 - 1])
    elif what == "input_shape" and spec.description.input:
        arr = spec.description.input[0].type.multiArrayType
        if arr.shape:
            arr.shape[rng.randrange(len(arr.shape))] = rng.choice([0, -1, 2**40])
    elif spec.WhichOneof("Type") == "mlProgram" and "main" in spec.mlProgram.functions:
        fn = spec.mlProgram.functions["main"]
        block = next(iter(fn.block_specializations.values()))
        ops = list(block.operations)
        if what == "op_type" and ops:
            rng.choice(ops).type = rng.choice(["conv", "nope", "", "relu", "const"])
        elif what in ("blob_offset", "blob_path"):
            consts = [o for o in ops if o.type == "const"]
            for op in rng.sample(consts, min(len(consts), 3)):
                val = op.attributes.get("val")
                if val is not None and val.WhichOneof("value") == "blobFileValue":
                    if what == "blob_offset":
                        val.blobFileValue.offset = rng.choice([0, 1, 2**40, 17])
                    else:
                        val.blobFileValue.fileName = rng.choice(["@model_path/weights/missing.bin", "../../etc/hostname", ""])
        elif what == "main":
            spec.mlProgram.functions["other"].CopyFrom(fn)
            del spec.mlProgram.functions["main"]
    spec_file.write_bytes(spec.SerializeToString())
    return f"spec field {what}"


# ------------------------------------------------------------------------------------------------ driver

BYTE_OPS = ("bitflip", "byte", "truncate", "chunk")


@dataclass(frozen=True)
class Mutant:
    seed_file: Path
    index: int
    seed: int

    @property
    def name(self) -> str:
        return f"{self.seed_file.name}#{self.index}"

    def write(self, dst: Path) -> tuple[Path, str]:
        """Write the mutant as ``dst`` + the seed's suffix; returns (path, what was changed)."""
        rng = random.Random(f"{self.seed}:{self.seed_file.name}:{self.index}")
        suffix = self.seed_file.suffix.lower()
        target = dst.with_name(dst.name + suffix)
        if suffix == ".mlpackage":
            return target, mutate_mlpackage(self.seed_file, target, rng)
        data = _seed_bytes(self.seed_file)
        r = rng.random()
        fields = _tflite_fields_cached(self.seed_file) if suffix == ".tflite" else []
        if fields and r < 0.45:
            mutated, how = mutate_field(data, fields, rng)
        elif suffix == ".onnx" and r < 0.5:
            mutated, how = mutate_onnx(data, rng)
        else:
            mutated, how = mutate_bytes(data, rng, rng.choice(BYTE_OPS), sorted({f.pos for f in fields}))
        target.write_bytes(mutated)
        return target, how


_CACHE: dict = {}


def _seed_bytes(p: Path) -> bytes:
    if ("bytes", p) not in _CACHE:
        _CACHE["bytes", p] = p.read_bytes()
    return _CACHE["bytes", p]


def _tflite_fields_cached(p: Path) -> list[Field]:
    if ("fields", p) not in _CACHE:
        _CACHE["fields", p] = tflite_fields(_seed_bytes(p))
    return _CACHE["fields", p]


def mutants(seed_file: Path, n: int, seed: int) -> list[Mutant]:
    """``n`` mutants of ``seed_file`` (written lazily by ``Mutant.write``)."""
    return [Mutant(Path(seed_file), i, seed) for i in range(n)]
