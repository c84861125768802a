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
                code = next(
                    (i for i, oc in enumerate(model.operatorCodes) if max(oc.builtinCode, oc.deprecatedBuiltinCode) == fb.BuiltinOperator.DEQUANTIZE),
                    None,
                )
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


def fc_inputs(tflite_bytes: bytes, tensor_names: set[str]) -> dict[str, int]:
    """Output tensor name -> input tensor index of the FULLY_CONNECTED ops producing ``tensor_names``."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=tflite_bytes)
    names = {t["index"]: t["name"] for t in it.get_tensor_details()}
    return {
        names[int(op["outputs"][0])]: int(op["inputs"][0])
        for op in it._get_ops_details()
        if op["op_name"] == "FULLY_CONNECTED" and names.get(int(op["outputs"][0])) in tensor_names
    }


def int8_weights(
    tflite_bytes: bytes, tensor_names: set[str], input_means: dict | None = None, output_shift: dict | None = None
) -> tuple[bytes, list[str]]:
    """Float FULLY_CONNECTED ops producing ``tensor_names``: int8 weights (per output channel, symmetric), float activations.

    LiteRT runs such an op as a dynamic-range ("hybrid") layer; XNNPACK takes it
    (it quantizes the input per call and multiplies in int8, measured). The
    weights shrink 4x and the output stays float: no 1/256 output step on a
    classifier's logits or a regressor's coordinates.

    ``input_means`` (output name -> the mean input vector over the calibration
    images) corrects the bias for the rounding of the weights: the expected
    output moves by (W_q - W) . E[x], a constant per output that is larger
    than the margin between near-tied logits; the bias absorbs it.
    ``output_shift`` (output name -> vector) is subtracted from the bias too:
    the mean error of the whole int8 model on that output, measured against
    the reference model on the calibration images (empirical bias correction).
    Returns the new bytes and the names of the tensors whose ops changed.
    """
    import flatbuffers
    import numpy as np
    from ai_edge_litert import schema_py_generated as fb

    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(tflite_bytes, 0))
    fc = {i for i, oc in enumerate(model.operatorCodes) if max(oc.builtinCode, oc.deprecatedBuiltinCode) == fb.BuiltinOperator.FULLY_CONNECTED}
    done = []
    for sg in model.subgraphs:
        for op in sg.operators:
            if op.opcodeIndex not in fc or op.outputs is None or len(op.inputs) < 2:
                continue
            out = sg.tensors[int(op.outputs[0])]
            name = out.name.decode() if isinstance(out.name, bytes) else out.name
            w = sg.tensors[int(op.inputs[1])]
            x = sg.tensors[int(op.inputs[0])]
            buf = model.buffers[w.buffer] if w.buffer is not None and w.buffer < len(model.buffers) else None
            if (
                name not in tensor_names
                or w.type != fb.TensorType.FLOAT32
                or x.type != fb.TensorType.FLOAT32
                or buf is None
                or buf.data is None
                or not len(buf.data)
            ):
                continue
            values = np.frombuffer(bytes(bytearray(buf.data)), np.float32).reshape([int(d) for d in w.shape])
            scale = np.maximum(np.abs(values).max(axis=1), 1e-12) / 127.0
            q = np.clip(np.rint(values / scale[:, None]), -127, 127).astype(np.int8)
            mean, extra = (input_means or {}).get(name), (output_shift or {}).get(name)
            if mean is not None or extra is not None:
                shift = np.zeros(values.shape[0], np.float64)
                if mean is not None:
                    shift += (q.astype(np.float64) * scale[:, None] - values) @ np.asarray(mean, np.float64).reshape(-1)
                if extra is not None:
                    shift += np.asarray(extra, np.float64).reshape(-1)
                _add_to_bias(model, sg, op, fb, -shift)
            buf.data = np.frombuffer(q.tobytes(), np.uint8)
            w.type = fb.TensorType.INT8
            w.quantization = fb.QuantizationParametersT()
            w.quantization.scale = scale.astype(np.float32).tolist()
            w.quantization.zeroPoint = [0] * len(scale)
            w.quantization.quantizedDimension = 0
            done.append(name)
    if not done:
        return tflite_bytes, []
    builder = flatbuffers.Builder(len(tflite_bytes))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), done


def _add_to_bias(model, sg, op, fb, delta) -> None:
    """Add ``delta`` to a float FULLY_CONNECTED's bias, giving it one when it has none (TFLite drops a zero bias)."""
    import numpy as np

    inputs = [int(i) for i in op.inputs]
    if len(inputs) > 2 and inputs[2] >= 0:
        b = sg.tensors[inputs[2]]
        buf = model.buffers[b.buffer]
        bias = np.frombuffer(bytes(bytearray(buf.data)), np.float32).astype(np.float64)
        buf.data = np.frombuffer((bias + delta).astype(np.float32).tobytes(), np.uint8)
        return
    buf = fb.BufferT()
    buf.data = np.frombuffer(np.asarray(delta, np.float32).tobytes(), np.uint8)
    model.buffers.append(buf)
    t = fb.TensorT()
    t.shape, t.type, t.buffer, t.name = [len(delta)], fb.TensorType.FLOAT32, len(model.buffers) - 1, "devicekit_bias"
    sg.tensors.append(t)
    op.inputs = inputs[:2] + [len(sg.tensors) - 1]
