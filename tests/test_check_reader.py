"""The light readers against real files: MediaPipe's third-party models, a Keras CNN, ONNX, CoreML.

The op table is compared with what the LiteRT interpreter itself reports, and
the flatbuffer reader with the schema's generated accessors.
"""

from __future__ import annotations

import numpy as np
import pytest
from check_models import keras_tflite, mediapipe, small_mlpackage, small_onnx

from devicekit.check import run_checks
from devicekit.modelfile import read_model

MP_MODELS = ["face_detection_short_range.tflite", "face_detection_full_range_sparse.tflite", "face_landmark.tflite",
             "face_landmark_with_attention.tflite", "selfie_segmentation.tflite", "iris_landmark.tflite"]


@pytest.mark.parametrize("name", MP_MODELS)
def test_op_table_matches_interpreter(name):
    from ai_edge_litert.interpreter import Interpreter

    path = mediapipe(name)
    facts = read_model(path)
    details = Interpreter(model_path=str(path))._get_ops_details()
    assert len(details) == len(facts.ops)
    for d, op in zip(details, facts.ops):
        assert d["op_name"] == op.op, (d["index"], d["op_name"], op.op)
        assert list(d["inputs"]) == list(op.inputs)
        assert list(d["outputs"]) == list(op.outputs)
    report = run_checks(path)
    table = {(r["op"], r["version"]): r["count"] for r in report.sections["ops"]}
    counted = {}
    for d in details:
        counted[d["op_name"]] = counted.get(d["op_name"], 0) + 1
    assert {op: sum(c for (o, _), c in table.items() if o == op) for op in counted} == counted


@pytest.mark.parametrize("name", MP_MODELS)
def test_reader_matches_generated_schema(name):
    from ai_edge_litert import schema_py_generated as s

    path = mediapipe(name)
    data = path.read_bytes()
    facts = read_model(path)
    model = s.Model.GetRootAs(data, 0)
    names = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}
    sg = model.Subgraphs(0)
    assert sg.TensorsLength() == sum(1 for t in facts.tensors)  # single-subgraph models
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        ours = facts.tensors[i]
        assert ours.name == t.Name().decode()
        assert list(ours.shape) == list(t.ShapeAsNumpy()) if t.ShapeLength() else ours.shape == ()
        buf = model.Buffers(t.Buffer())
        assert ours.const_bytes == (buf.DataLength() if t.Buffer() else 0)
    for j in range(sg.OperatorsLength()):
        op = sg.Operators(j)
        code = model.OperatorCodes(op.OpcodeIndex())
        assert facts.ops[j].version == code.Version()
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if names[builtin] == "CUSTOM":
            assert facts.ops[j].op == code.CustomCode().decode() and facts.ops[j].kind == "custom"
        else:
            assert facts.ops[j].op == names[builtin]


def test_custom_ops_named_and_gated():
    seg = run_checks(mediapipe("selfie_segmentation.tflite"))
    custom = seg.get("ops:custom")
    assert custom.status == "warn" and custom.value == ["Convolution2DTransposeBias"]
    assert seg.ok  # not a gate unless asked
    att = run_checks(mediapipe("face_landmark_with_attention.tflite"), runtimes=["litert"])
    assert set(att.get("ops:custom").value) == {"TransformLandmarks", "TransformTensorBilinear", "Landmarks2TransformMatrix"}
    assert not att.ok and "ops:custom" in [r.check for r in att.failed]
    # XNNPACK takes MediaPipe's transposed conv but not the attention model's landmark ops
    assert seg.get("ops:xnnpack").status == "pass"
    assert att.get("ops:xnnpack").details["reasons"] == {"custom op": 11}


def test_plain_face_detector_passes_gates():
    r = run_checks(mediapipe("face_detection_short_range.tflite"), budgets=["play-apk", "tiny=200KB"],
                   runtimes=["litert>=2.5", "xnnpack", "gpu"])
    assert r.get("budget:play-apk").status == "pass"
    assert r.get("budget:tiny").status == "fail" and not r.ok  # 230 KB > 200 KB
    assert r.get("ops:gpu").status == "pass" and r.get("ops:xnnpack").status == "pass"
    old = run_checks(mediapipe("face_detection_full_range_sparse.tflite"), runtimes=["litert>=1.13"])
    assert old.get("ops:litert").status == "fail"  # needs a newer runtime than 1.13 (its metadata says 2.2.0)
    assert old.get("ops:litert").value == "2.2.0" == read_model(mediapipe("face_detection_full_range_sparse.tflite")).metadata["min_runtime_version"]


def test_keras_macs_and_int8_purity():
    fp32 = run_checks(keras_tflite("fp32"))
    # conv3x3 30x30x8x27 + dw3x3 15x15x8x9 + conv1x1 15x15x16x8 + FC 3600x10
    assert fp32.sections["compute"]["total_macs"] == 194400 + 16200 + 28800 + 36000
    assert fp32.get("int8").status == "info"
    assert not run_checks(keras_tflite("fp32"), require="int8").ok
    i8 = run_checks(keras_tflite("int8"), require=["int8"])
    assert i8.get("int8").status == "pass" and i8.ok, i8.get("int8").message
    assert i8.sections["int8"]["float_macs_share"] == 0.0
    fp16 = run_checks(keras_tflite("fp16"))
    sec = fp16.sections["int8"]
    assert sec["pairs"] == []  # DEQUANTIZE of fp16 weights is no activation round trip
    assert fp16.sections["size"]["float16_weight_bytes"] > 0
    # weights by layer: the FC holds 3600x10 floats, the largest layer
    top = fp32.sections["size"]["layers"][0]
    assert top["type"] == "FULLY_CONNECTED" and top["bytes"] >= 3600 * 10 * 4


def test_onnx_reader():
    r = run_checks(small_onnx())
    assert r.format == "onnx"
    assert r.sections["compute"]["total_macs"] == 8 * 14 * 14 * 27 + 10 * 392
    assert r.get("ops:onnx").status == "info"
    assert r.sections["size"]["first_fc"]["chw"] == (8, 7, 7)
    mem = r.sections["memory"]
    # x (3x16x16) and y live throughout; the conv output (8x14x14) is the largest activation
    assert mem["largest"][0]["shape"] == [1, 8, 14, 14]


def test_mlpackage_reader():
    pytest.importorskip("coremltools")
    r = run_checks(small_mlpackage())
    assert r.format == "mlpackage"
    types = {row["op"] for row in r.sections["ops"]}
    assert {"conv", "linear"} <= types
    assert r.sections["compute"]["total_macs"] == 8 * 14 * 14 * 27 + 10 * 392
    assert r.get("ops:coreml-ane").status == "pass"
    fp32 = run_checks(small_mlpackage("fp32"), runtimes=["coreml-ane"])
    assert fp32.get("ops:coreml-ane").status == "fail" and "float16 only" in fp32.get("ops:coreml-ane").message
    assert fp32.sections["compute"]["total_macs"] == r.sections["compute"]["total_macs"]


def test_fp_model_size_what_ifs():
    r = run_checks(keras_tflite("fp32"))
    s = r.sections["size"]
    assert s["what_if"]["fp16"] < s["file_bytes"] < s["apk_stored_bytes"]
    assert s["what_if"]["int8"] < s["what_if"]["fp16"]
    assert np.isclose(s["file_bytes"] - s["what_if"]["fp16"], s["float32_weight_bytes"] / 2, atol=1)
