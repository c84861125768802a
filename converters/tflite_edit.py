"""Small edits of a .tflite flatbuffer through the schema's object API."""

from __future__ import annotations


def float_outputs(tflite_bytes: bytes) -> bytes:
    """Make every output that the quantiser re-quantised (float -> QUANTIZE -> int8) float again.

    The MLIR quantiser ignores ``output_data_type=float32`` when the ops
    producing the outputs were kept in float by the policy; it appends a
    QUANTIZE. Dropping that op and pointing the output (and signature) at its
    float input gives float outputs, as the policy intends.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as fb

    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(tflite_bytes, 0))
    quantize = {i for i, oc in enumerate(model.operatorCodes) if max(oc.builtinCode, oc.deprecatedBuiltinCode) == fb.BuiltinOperator.QUANTIZE}
    changed = False
    for sg_index, sg in enumerate(model.subgraphs):
        remap = {}
        keep = []
        for op in sg.operators:
            out = int(op.outputs[0]) if op.outputs is not None and len(op.outputs) else -1
            if op.opcodeIndex in quantize and out in set(int(o) for o in sg.outputs):
                src = int(op.inputs[0])
                if sg.tensors[src].type == fb.TensorType.FLOAT32:
                    remap[out] = src
                    continue
            keep.append(op)
        if not remap:
            continue
        changed = True
        sg.operators = keep
        sg.outputs = [remap.get(int(o), int(o)) for o in sg.outputs]
        for sig in model.signatureDefs or []:
            if sig.subgraphIndex == sg_index:
                for t in sig.outputs or []:
                    t.tensorIndex = remap.get(t.tensorIndex, t.tensorIndex)
        for old, new in remap.items():  # keep the output names users see
            sg.tensors[new].name, sg.tensors[old].name = sg.tensors[old].name, sg.tensors[new].name
    changed |= _dequantize_int_outputs(model, fb)
    if not changed:
        return tflite_bytes
    builder = flatbuffers.Builder(len(tflite_bytes) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _dequantize_int_outputs(model, fb) -> bool:
    """Give every int8 model output a DEQUANTIZE to float32 (the quantiser leaves a fully int8 graph's outputs int8).

    Apps, verify and the manifest expect float outputs from every target; the
    DEQUANTIZE is one cheap op per output, taken by XNNPACK.
    """
    changed = False
    code = None
    for sg_index, sg in enumerate(model.subgraphs):
        for pos, out in enumerate(list(sg.outputs)):
            t = sg.tensors[int(out)]
            if t.type not in (fb.TensorType.INT8, fb.TensorType.UINT8, fb.TensorType.INT16):
                continue
            if code is None:
                code = next((i for i, oc in enumerate(model.operatorCodes)
                             if max(oc.builtinCode, oc.deprecatedBuiltinCode) == fb.BuiltinOperator.DEQUANTIZE), None)
                if code is None:
                    oc = fb.OperatorCodeT()
                    oc.builtinCode = oc.deprecatedBuiltinCode = fb.BuiltinOperator.DEQUANTIZE
                    oc.version = 1
                    model.operatorCodes.append(oc)
                    code = len(model.operatorCodes) - 1
            new = fb.TensorT()
            new.shape, new.shapeSignature, new.type = t.shape, t.shapeSignature, fb.TensorType.FLOAT32
            new.name, t.name = t.name, (t.name or b"") + b"_int8" if isinstance(t.name, bytes) else f"{t.name or ''}_int8"
            new.buffer = 0
            if model.buffers is None or not len(model.buffers):
                model.buffers = [fb.BufferT()]
            sg.tensors.append(new)
            idx = len(sg.tensors) - 1
            op = fb.OperatorT()
            op.opcodeIndex, op.inputs, op.outputs = code, [int(out)], [idx]
            sg.operators.append(op)
            outputs = [int(o) for o in sg.outputs]
            outputs[pos] = idx
            sg.outputs = outputs
            for sig in model.signatureDefs or []:
                if sig.subgraphIndex == sg_index:
                    for st in sig.outputs or []:
                        if st.tensorIndex == int(out):
                            st.tensorIndex = idx
            changed = True
    return changed


def strip_names(tflite_bytes: bytes) -> bytes:
    """Drop the debug names of intermediate tensors; keep input/output names and signatures.

    TensorFlow names every tensor after the ops fused into it (often 100+
    bytes each); on a phone they are dead weight: for heatmap2s they are
    about a fifth of the int8 file. Inputs, outputs and signature defs keep
    their names, so apps and devicekit find tensors as before.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as fb

    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(tflite_bytes, 0))
    for sg in model.subgraphs:
        keep = {int(i) for i in sg.inputs} | {int(o) for o in sg.outputs}
        for i, t in enumerate(sg.tensors):
            if i not in keep:
                t.name = ""
    builder = flatbuffers.Builder(len(tflite_bytes))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
