"""Read a .tflite file into ModelFacts with a bounds-checked flatbuffer walk.

Field slots follow tensorflow/lite/schema/schema.fbs (the same schema
ai_edge_litert ships as ``schema_py_generated``; tests compare this reader
with the generated accessors and with the interpreter). Enum names come from
the generated schema module, so new ops get their names without a code edit.
"""

from __future__ import annotations

from functools import lru_cache

from ..errors import InputError
from ._fb import Buf, FlatbufferError
from .facts import DTYPE_BYTES, ModelFacts, Op, Tensor

# schema.fbs field slots (0-based).
M_VERSION, M_OPCODES, M_SUBGRAPHS, M_DESCRIPTION, M_BUFFERS, M_METADATA = 0, 1, 2, 3, 4, 6
OC_DEPRECATED, OC_CUSTOM, OC_VERSION, OC_BUILTIN = 0, 1, 2, 3
SG_TENSORS, SG_INPUTS, SG_OUTPUTS, SG_OPERATORS, SG_NAME = 0, 1, 2, 3, 4
T_SHAPE, T_TYPE, T_BUFFER, T_NAME, T_QUANT, T_VARIABLE, T_SPARSITY, T_SHAPE_SIG = 0, 1, 2, 3, 4, 5, 6, 7
Q_SCALE, Q_ZERO_POINT = 2, 3
OP_OPCODE, OP_INPUTS, OP_OUTPUTS, OP_OPTIONS_TYPE, OP_OPTIONS = 0, 1, 2, 3, 4
B_DATA, B_OFFSET, B_SIZE = 0, 1, 2
MD_NAME, MD_BUFFER = 0, 1
PLACEHOLDER_FOR_GREATER_OP_CODES = 127
MAX_OPS = 1_000_000


@lru_cache(maxsize=1)
def _enums() -> tuple[dict[int, str], dict[int, str]]:
    from ai_edge_litert import schema_py_generated as s

    ops = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}
    types = {v: k.lower() for k, v in vars(s.TensorType).items() if not k.startswith("_")}
    return ops, types


def read_tflite(path: str, data: bytes) -> ModelFacts:
    if len(data) < 8:
        raise InputError(f"{path}: not a TFLite model ({len(data)} bytes; too short for a flatbuffer)")
    if data[4:8] != b"TFL3":
        raise InputError(f"{path}: not a TFLite model (no TFL3 file identifier at byte 4)")
    try:
        return _read(path, data)
    except FlatbufferError as exc:
        raise InputError(f"{path}: corrupt TFLite flatbuffer: {exc}") from None


def _opcode(tab, names) -> tuple[str, int, str, str | None]:
    dep = tab.scalar(OC_DEPRECATED, "i8", 0)
    code = tab.scalar(OC_BUILTIN, "i32", 0)
    code = max(code, dep) if dep != PLACEHOLDER_FOR_GREATER_OP_CODES else code
    version = tab.scalar(OC_VERSION, "i32", 1)
    name = names.get(code, f"BUILTIN_{code}")
    if name == "CUSTOM":
        custom = tab.string(OC_CUSTOM) or "?"
        kind = "flex" if custom.startswith("Flex") else "custom"
        return (custom if kind == "custom" else custom[4:]), version, kind, custom
    return name, version, "builtin", None


# bytes per element of the types LiteRT sizes with BytesRequired (packed int4/int2, strings, resources: not checked)
_ELEM_BYTES = {k: v for k, v in DTYPE_BYTES.items() if v >= 1}


def _check_size(path: str, where: str, dtype: str, shape, data_bytes: int, sparse: bool) -> None:
    """What LiteRT's InterpreterBuilder refuses at load time: a negative dimension (its size overflows) and a
    constant tensor whose buffer holds fewer bytes than its shape needs."""
    if dtype not in _ELEM_BYTES:
        return
    if any(int(d) < 0 for d in shape):
        raise InputError(f"{path}: corrupt TFLite model: {where} has a negative dimension in its shape {[int(d) for d in shape]}")
    if data_bytes and not sparse:
        need = _ELEM_BYTES[dtype]
        for d in shape:
            need *= int(d)
        if need > data_bytes:
            raise InputError(
                f"{path}: corrupt TFLite model: {where} ({dtype}, shape {[int(d) for d in shape]}) needs {need} bytes, its buffer holds {data_bytes}"
            )


def _read(path: str, data: bytes) -> ModelFacts:
    buf = Buf(data)
    model = buf.root("Model")
    op_names, type_names = _enums()
    schema_version = model.scalar(M_VERSION, "u32", 0)
    codes = [_opcode(t, op_names) for t in model.tables(M_OPCODES, "OperatorCode")]
    buffers = model.tables(M_BUFFERS, "Buffer")

    def buffer_bytes(i: int) -> int:
        if not 0 <= i < len(buffers) or i == 0:
            return 0
        b = buffers[i]
        start, n = b.bytes_span(B_DATA)
        if n:
            return n
        off, size = b.scalar(B_OFFSET, "u64", 0), b.scalar(B_SIZE, "u64", 0)
        if off > 1:  # large models keep buffers after the flatbuffer
            buf.need(off, size, f"Buffer[{i}] external data")
            return size
        return 0

    subgraphs = model.tables(M_SUBGRAPHS, "SubGraph")
    if not subgraphs:
        raise InputError(f"{path}: TFLite model has no subgraph")
    tensors: list[Tensor] = []
    ops: list[Op] = []
    other: list[Op] = []
    main_inputs = main_outputs = ()
    for si, sg in enumerate(subgraphs):
        base = len(tensors)
        ttabs = sg.tables(SG_TENSORS, f"SubGraph[{si}].Tensor")
        for ti, t in enumerate(ttabs):
            q = t.table(T_QUANT, "QuantizationParameters")
            scale = tuple(float(x) for x in q.numbers(Q_SCALE, "f32")) if q else ()
            zp = tuple(int(x) for x in q.numbers(Q_ZERO_POINT, "i64")) if q else ()
            shape = raw_shape = t.numbers(T_SHAPE, "i32")
            sig = t.numbers(T_SHAPE_SIG, "i32")
            if len(sig) == len(shape) and len(sig):
                shape = [(-1 if s < 0 else d) for d, s in zip(shape, sig)]
            bi = t.scalar(T_BUFFER, "u32", 0)
            where = f"tensor {ti}" + (f" of subgraph {si}" if si else "")
            if bi >= len(buffers):  # LiteRT: "specifies out of range buffer"
                raise InputError(f"{path}: corrupt TFLite model: {where} uses buffer {bi}, the model has {len(buffers)}")
            code = t.scalar(T_TYPE, "i8", 0)
            if code not in type_names:  # LiteRT: "Unsupported data type"
                raise InputError(f"{path}: corrupt TFLite model: {where} has an unknown tensor type (code {code})")
            nb = buffer_bytes(bi)
            _check_size(path, where, type_names[code], raw_shape, nb, t.has(T_SPARSITY))
            tensors.append(
                Tensor(
                    index=base + ti,
                    name=t.string(T_NAME) or f"t{ti}",
                    shape=tuple(int(d) for d in shape),
                    dtype=type_names[code],
                    const=nb > 0,
                    const_bytes=nb,
                    scale=scale,
                    zero_point=zp,
                    variable=bool(t.scalar(T_VARIABLE, "bool", False)),
                )
            )
        otabs = sg.tables(SG_OPERATORS, f"SubGraph[{si}].Operator")
        if len(otabs) > MAX_OPS:
            raise InputError(f"{path}: {len(otabs)} operators is not a plausible model")
        sg_ops = []
        for oi, o in enumerate(otabs):
            ci = o.scalar(OP_OPCODE, "u32", 0)
            if ci >= len(codes):
                raise InputError(f"{path}: corrupt TFLite flatbuffer: operator {oi} uses opcode {ci} of {len(codes)}")
            name, version, kind, custom = codes[ci]
            raw_ins, raw_outs = o.numbers(OP_INPUTS, "i32"), o.numbers(OP_OUTPUTS, "i32")
            for i in list(raw_ins) + list(raw_outs):  # -1 marks an absent optional input; nothing else is < 0
                if not -1 <= i < len(ttabs):
                    raise InputError(f"{path}: corrupt TFLite flatbuffer: operator {oi} names tensor {int(i)} of {len(ttabs)}")
            ins = tuple(int(i) + base if i >= 0 else -1 for i in raw_ins)
            outs = tuple(int(i) + base if i >= 0 else -1 for i in raw_outs)
            sg_ops.append(Op(index=oi, op=name, version=version, inputs=ins, outputs=outs, kind=kind, custom_name=custom, subgraph=si))
        if si == 0:
            ops = sg_ops
            main_inputs = tuple(int(i) for i in sg.numbers(SG_INPUTS, "i32"))
            main_outputs = tuple(int(i) for i in sg.numbers(SG_OUTPUTS, "i32"))
            for i in main_inputs + main_outputs:  # (-1 too: LiteRT then reads outside its tensor array, SIGSEGV)
                if not 0 <= i < len(ttabs):
                    raise InputError(f"{path}: corrupt TFLite flatbuffer: graph input/output {i} of {len(ttabs)} tensors")
        else:
            other.extend(sg_ops)
    metadata = {}
    for m in model.tables(M_METADATA, "Metadata"):
        name = m.string(MD_NAME) or "?"
        bi = m.scalar(MD_BUFFER, "u32", 0)
        if name == "min_runtime_version" and 0 < bi < len(buffers):
            start, n = buffers[bi].bytes_span(B_DATA)
            metadata[name] = bytes(data[start : start + n]).split(b"\0")[0].decode("ascii", "replace")
        else:
            metadata.setdefault("entries", []).append(name)
    metadata["schema_version"] = schema_version
    metadata["description"] = model.string(M_DESCRIPTION)
    metadata["subgraphs"] = len(subgraphs)
    return ModelFacts(
        path=path,
        format="tflite",
        file_bytes=len(data),
        tensors=tensors,
        ops=ops,
        inputs=main_inputs,
        outputs=main_outputs,
        other_ops=other,
        metadata=metadata,
        blob=data,
    )
