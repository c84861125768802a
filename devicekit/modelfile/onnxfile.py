"""Read an .onnx file into ModelFacts with the onnx package (no onnxruntime, no torch)."""

from __future__ import annotations

from ..errors import InputError
from .facts import ModelFacts, Op, Tensor

_ONNX_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 8: "string",
                9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 16: "bfloat16", 22: "int4"}


def _dims(tt) -> tuple[int, ...]:
    if not tt.HasField("shape"):
        return ()
    return tuple(int(d.dim_value) if d.HasField("dim_value") else -1 for d in tt.shape.dim)


def read_onnx(path: str, data: bytes) -> ModelFacts:
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError, TypeError) as exc:
        raise InputError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {str(exc)[:120]})") from None
    if not model.graph.node and not model.graph.input:
        raise InputError(f"{path}: not an ONNX model (no graph)")
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # noqa: BLE001 - shapes stay unknown where inference fails
        pass
    g = model.graph
    tensors: list[Tensor] = []
    index: dict[str, int] = {}

    def add(name, shape, dtype, const_bytes=0, scale=()):
        if name in index:
            return index[name]
        index[name] = len(tensors)
        tensors.append(Tensor(index=len(tensors), name=name, shape=shape, dtype=dtype, const=const_bytes > 0,
                              const_bytes=const_bytes, scale=scale))
        return index[name]

    for init in g.initializer:

        dt = _ONNX_DTYPES.get(init.data_type, "float32")
        t = Tensor(0, init.name, tuple(int(d) for d in init.dims), dt)
        add(init.name, t.shape, dt, const_bytes=max(t.nbytes, 1))
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        tt = vi.type.tensor_type
        add(vi.name, _dims(tt), _ONNX_DTYPES.get(tt.elem_type, "float32"))
    ops = []
    for i, node in enumerate(g.node):
        ins = tuple(add(n, (), "float32") if n else -1 for n in node.input)
        outs = tuple(add(n, (), "float32") for n in node.output)
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute
                 if a.name in ("kernel_shape", "strides", "group", "pads", "dilations")}
        if node.op_type == "Constant":
            for o in outs:
                tensors[o].const, tensors[o].const_bytes = True, max(tensors[o].nbytes, 1)
        ops.append(Op(index=i, op=node.op_type, version=0, inputs=ins, outputs=outs,
                      kind="onnx" if node.domain in ("", "ai.onnx") else "custom",
                      custom_name=None if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}", attrs=attrs))
    opset = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    for op in ops:
        op.version = opset.get("ai.onnx", 0) if op.kind == "onnx" else 0
    init_names = {i.name for i in g.initializer}
    inputs = tuple(index[v.name] for v in g.input if v.name not in init_names)
    outputs = tuple(index[v.name] for v in g.output)
    return ModelFacts(path=path, format="onnx", file_bytes=len(data), tensors=tensors, ops=ops, inputs=inputs,
                      outputs=outputs, metadata={"opset": opset, "producer": model.producer_name, "ir_version": model.ir_version})
