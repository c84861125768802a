"""`devicekit check`'s XNNPACK verdict is the real delegate's: delegated, partly, or fails to prepare.

check asks LiteRT in a child process (devicekit.runtime.probe); these tests
load the same files in this process with the default resolver (XNNPACK
applied, as on a phone) and compare, file by file: real third-party models,
ONet's int8 as devicekit writes it now, and ONet's int8 as it was written
before the ceil-mode pooling rewrite (XNNPACK failed to prepare it).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fetched import fetched

from devicekit.check import run_checks
from devicekit.runtime.probe import delegated_ops


def in_process_verdict(path: Path) -> tuple[str, set[str]]:
    """(delegated | partly | fails, op types left to the builtin kernels), from LiteRT in this process."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_path=str(path), num_threads=1, experimental_op_resolver_type=OpResolverType.AUTO)
    try:
        it.allocate_tensors()
    except (RuntimeError, ValueError):
        builtin = Interpreter(model_path=str(path), num_threads=1,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        try:
            builtin.allocate_tensors()
        except (RuntimeError, ValueError):
            return "unloadable", set()
        return "fails", set()
    ops = it._get_ops_details()
    _, left, _ = delegated_ops(ops)
    names = [o["op_name"] for o in ops if o["op_name"] != "DELEGATE"]
    return ("partly" if left else "delegated"), {names[i] for i in left}


def check_verdict(path: Path) -> tuple[str, set[str]]:
    res = run_checks(path).get("ops:xnnpack")
    assert res is not None and "measured" in res.details.get("source", ""), res
    verdict = res.details.get("verdict")
    return verdict, {o["op"] for o in res.details.get("left", [])}


def assert_same_verdict(path: Path) -> str:
    got, want = check_verdict(path), in_process_verdict(path)
    assert got == want, (path.name, got, want)
    return got[0]


def test_mediapipe_models():
    models = fetched("fetch_test_models")
    verdicts = {p.name: assert_same_verdict(p) for p in sorted(models.glob("*.tflite"))}
    assert len(verdicts) >= 6, verdicts
    assert verdicts["face_detection_short_range.tflite"] == "delegated"
    # its custom op Convolution2DTransposeBias is one XNNPACK implements: the default interpreter runs it
    assert verdicts["selfie_segmentation.tflite"] == "delegated"
    # MediaPipe's attention landmarker needs custom ops an app registers: not loadable as it is, not XNNPACK's fault
    assert verdicts["face_landmark_with_attention.tflite"] == "unloadable"


def test_a_file_xnnpack_cannot_prepare_fails_check(tmp_path, monkeypatch):
    """ONet int8 without devicekit's graph rewrites (the old file): LiteRT's default interpreter does not load it."""
    pytest.importorskip("tensorflow")
    import mtcnn
    from verify_fixtures import face_data

    from devicekit import converters as cv
    from devicekit import pipeline
    from devicekit.converters import onnx_passes

    monkeypatch.setattr(onnx_passes, "PASSES", [])
    monkeypatch.setattr(onnx_passes, "INT8_PASSES", [])
    ts = mtcnn.save_torchscript(tmp_path / "onet.pt")
    m = cv.load_model(str(ts), spec_overrides={"shape": (1, 3, 48, 48), "mean": (127.5,), "std": (128.0,)})
    opts = cv.ConvertOptions(spec=m.spec, out_dir=tmp_path / "out", calib_dir=face_data() / "unlabeled", calib_count=16,
                             policy=cv.QuantPolicy.named("keep-float-tail"), gate=cv.GateConfig(enabled=False))
    rep = pipeline.convert(m, ["tflite-int8"], opts)
    art = rep.results[0].artifact
    assert assert_same_verdict(art) == "fails"
    assert not run_checks(art).ok  # a hard failure, gate or not: a phone would not load it
    gate = rep.results[0].summary["gate"]
    assert not gate["passed"] and "XNNPACK" in " ".join(gate["failures"])  # and convert said so, loudly
    assert rep.results[0].status == "failed"
