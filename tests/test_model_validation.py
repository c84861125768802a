"""One validation before any interpreter (issue 17): hostile model files are refused cleanly, sound ones are not.

Each damaged file is made from a real one by one edit at a known place (the fuzz harness's field map), and the
runtime's own reaction is shown first where it matters (LiteRT dies with SIGSEGV on a truncated file), so the
test proves the file is hostile, not just that devicekit dislikes it.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from check_models import mediapipe
from cli_run import cli
from cli_run import one_line_error as clean
from fuzz.mutate import tflite_fields


def edited(src: Path, dst: Path, what: str, value: int) -> Path:
    """``src`` with the structural field named ``what`` (e.g. ``Tensor[3].buffer``) set to ``value``."""
    data = bytearray(src.read_bytes())
    f = next(f for f in tflite_fields(bytes(data)) if f.what == what)
    struct.pack_into(f.fmt, data, f.pos, value)
    dst.write_bytes(bytes(data))
    return dst


def litert_in_child(path: Path) -> int:
    code = ("import sys; from ai_edge_litert.interpreter import Interpreter\n"
            "it = Interpreter(model_path=sys.argv[1]); it.allocate_tensors()")
    return subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, timeout=300).returncode


@pytest.fixture(scope="module")
def truncated(tmp_path_factory) -> list[Path]:
    """face_landmark.tflite cut a few KB short: LiteRT's Python interpreter (no verifier) dies on these."""
    d = tmp_path_factory.mktemp("trunc")
    data = mediapipe("face_landmark.tflite").read_bytes()
    out = []
    for cut in (1240303, 1237720, 1235609):
        p = d / f"cut{cut}.tflite"
        p.write_bytes(data[:cut])
        out.append(p)
    return out


def test_verify_refuses_truncated_files_before_any_interpreter(truncated, tmp_path):
    """`verify MUTANT --reference zoo:heatmap2s` died with SIGSEGV on truncated files check and bench refused."""
    assert litert_in_child(truncated[0]) == -11  # the runtime itself: SIGSEGV
    for p in truncated:
        r = cli("verify", p, "--reference", "zoo:heatmap2s", "--images", tmp_path, cwd=tmp_path)
        clean(r, 2, "corrupt TFLite flatbuffer", "lies outside")
        assert "load zoo:heatmap2s" not in r.stderr  # refused before the reference (and torch) was loaded
        for cmd in (("check", p), ("bench", p, "--device", "host")):
            clean(cli(*cmd, cwd=tmp_path), 2, "corrupt TFLite flatbuffer")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("what, value, words", [
    ("Tensor[19].buffer", 16777215, ["tensor 19 uses buffer 16777215, the model has 89"]),
    ("Tensor[19].type", -1, ["unknown tensor type (code -1)"]),
    ("Tensor[170].shape[1]", -1, ["negative dimension"]),
    ("Operator[70].inputs[1]", -(2**31), ["operator 70 names tensor -2147483648"]),
])
def test_check_refuses_what_litert_refuses(tmp_path, what, value, words):
    """check exited 0 with a normal report on out-of-range buffers, tensor type 0xff, shapes of 0xffffffff
    (BytesRequired overflow) and tensor index -2**31; LiteRT refuses each (at load or at allocation)."""
    p = edited(mediapipe("face_detection_short_range.tflite"), tmp_path / "m.tflite", what, value)
    assert litert_in_child(p) != 0
    clean(cli("check", p, cwd=tmp_path), 2, *words)


def test_check_reports_will_not_allocate(tmp_path):
    """A file that loads but cannot allocate is a failed gate (exit 1) with LiteRT's reason, not a pass."""
    p = edited(mediapipe("face_detection_short_range.tflite"), tmp_path / "m.tflite", "Operator[108].inputs length", 0)
    r = cli("check", p, "--json", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    rows = {x["check"]: x for x in json.loads(r.stdout)["results"]}
    assert rows["runtime:litert"]["status"] == "fail" and "allocate" in rows["runtime:litert"]["message"]


def test_custom_op_models_that_xnnpack_cannot_run_fail_check(tmp_path):
    """MediaPipe's selfie segmenter needs a custom op the builtin kernels lack (XNNPACK runs it), which is only a
    warning. With one operator's output rewired, XNNPACK allocates it and then cannot run it: check said ok
    (the custom-op warning hid it); it is a failed gate now, with LiteRT's reason (found by the fuzz harness)."""
    p = edited(mediapipe("selfie_segmentation.tflite"), tmp_path / "m.tflite", "Operator[212].outputs[0]", 178)
    r = cli("check", p, "--json", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    rows = [x for x in json.loads(r.stdout)["results"] if x["check"] == "runtime:litert" and x["status"] == "fail"]
    assert rows and "cannot run it" in rows[0]["message"]


def test_sound_files_litert_runs_are_not_refused(tmp_path):
    """The reader is as permissive as the runtime where the file is sound: a vtable shorter than its own header
    (a table with no fields, which the flatbuffers verifier allows) loads and runs in LiteRT, and check passes it."""
    src = mediapipe("face_detection_short_range.tflite")
    data = bytearray(src.read_bytes())
    from devicekit.modelfile._fb import Buf

    meta = Buf(bytes(data)).root("Model").tables(6, "Metadata")[0]
    struct.pack_into("<H", data, meta._vt, 0)  # its vtable's length: 0, so the table has no fields
    (tmp_path / "vt.tflite").write_bytes(bytes(data))
    assert litert_in_child(tmp_path / "vt.tflite") == 0
    r = cli("check", tmp_path / "vt.tflite", cwd=tmp_path)
    assert r.returncode == 0, r.stderr


def test_bench_bad_input_is_exit_2_and_keeps_no_run(tmp_path):
    """Corrupt input to bench exited 3 (the device code); a directory named x.tflite was "model file not found"
    and left an empty run behind; a random .onnx was "--delegate xnnpack is not available on the host"."""
    (tmp_path / "d.tflite").mkdir()
    clean(cli("bench", "d.tflite", "--device", "host", cwd=tmp_path), 2, "is a directory")
    (tmp_path / "r.onnx").write_bytes(os.urandom(3000))
    clean(cli("bench", "r.onnx", "--device", "host", cwd=tmp_path), 2, "r.onnx", "ONNX")
    p = edited(mediapipe("face_detection_short_range.tflite"), tmp_path / "m.tflite", "Tensor[150].shape[1]", 2**31 - 1)
    clean(cli("bench", p, "--device", "host", cwd=tmp_path), 2, "corrupt TFLite model", "tensor 150")
    assert not (tmp_path / "runs").exists()


def _zero_stride_onnx(tmp_path) -> Path:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], strides=[0, 0])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, None, None])], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    p = tmp_path / "stride0.onnx"
    onnx.save(m, str(p))
    return p


def test_onnx_that_crashes_the_onnx_checker_is_refused(tmp_path):
    """A Conv with strides 0: onnx's own shape inference dies with SIGFPE, which used to take check, bench and
    convert down with it (they ran it in-process)."""
    p = _zero_stride_onnx(tmp_path)
    code = "import onnx, sys; onnx.shape_inference.infer_shapes(onnx.load(sys.argv[1]))"
    assert subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, timeout=120).returncode == -8
    for cmd in (("check", p), ("bench", p, "--device", "host"), ("convert", p, "--target", "tflite-fp32")):
        clean(cli(*cmd, cwd=tmp_path), 2, "stride0.onnx", "crashed")


def test_sound_onnx_benches_on_the_host_by_default(tmp_path):
    """The host's default delegate for .onnx is cpu (xnnpack is a LiteRT delegate)."""
    from device_tests.models import tiny_onnx

    r = cli("bench", tiny_onnx(), "--device", "host", "--frames", "3", "--warmup", "0", "--runs-dir", tmp_path / "runs",
            "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["summary"]["settings"]["delegate"] == "cpu"
