"""The platform-free Kotlin of the generated Android module, compiled with Debian's kotlinc 1.3 and run.

One compile per session (the rendered gray 1x1x80x72, 5-landmark model's
ModelSpec/Crop/Preprocess/Decode/OneEuro/Benchmark*/ModelConfig plus the test
driver tests/kotlin/DevicekitCli.kt); the jar is then driven with many inputs
and its outputs compared with the Python references: devicekit.face.crop (crop
and its inverse), the real .tflite run by ai-edge-litert on the Kotlin-made
input, devicekit.face.one_euro, and devicekit.bench's result writer/reader.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_package_models import make_tflite  # noqa: E402

from devicekit.mobile_templates import render  # noqa: E402

HERE = Path(__file__).resolve().parent
SOURCES = ["ModelSpec.kt", "ModelConfig.kt", "Crop.kt", "Preprocess.kt", "Decode.kt", "OneEuro.kt",
           "BenchmarkWriter.kt", "BenchmarkLoop.kt", "GoldenCheck.kt", "DetectorMap.kt"]

pytestmark = pytest.mark.skipif(shutil.which("kotlinc") is None or shutil.which("java") is None,
                                reason="needs Debian's kotlin (scripts/setup-system.sh installs it)")


def compile_cli(project, d: Path):
    """Compile a rendered Android project's platform-free Kotlin with tests/kotlin/DevicekitCli.kt.

    Returns run(*args, spec=None) -> stdout of one CLI subcommand (asserting it succeeded).
    """
    pkg = f"{project.app_id}.facelandmarker"
    src = project.out_dir / "facelandmarker/src/main/java" / pkg.replace(".", "/")
    cli = d / "Cli.kt"
    cli.write_text(f"package {pkg}\n\n" + (HERE / "kotlin" / "DevicekitCli.kt").read_text())
    jar = d / "cli.jar"
    p = subprocess.run(["nice", "kotlinc", *[str(src / s) for s in SOURCES], str(cli), "-include-runtime", "-d", str(jar)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and jar.exists(), p.stderr[-3000:]

    def run(*args, spec=None):
        extra = ["--spec", str(spec)] if spec else []
        q = subprocess.run(["java", "-cp", str(jar), f"{pkg}.CliKt", *args, *extra], capture_output=True, text=True, timeout=120)
        assert q.returncode == 0, q.stderr[-2000:]
        return q.stdout

    return run


def write_inputs(d: Path, stem: str, img: np.ndarray, boxes) -> tuple[str, str]:
    """The CLI's frame file and boxes file (one crop box per line) for ``img``; their paths."""
    frame, box_file = d / f"frame{stem}.txt", d / f"boxes{stem}.txt"
    _write_frame(frame, img)
    box_file.write_text("".join(" ".join(map(repr, b)) + "\n" for b in boxes))
    return str(frame), str(box_file)


@pytest.fixture(scope="session")
def kt(tmp_path_factory):
    d = tmp_path_factory.mktemp("kotlin")
    model = make_tflite(d / "m", "oddgray", (1, 1, 80, 72), 5, "gray", (0.0,), (255.0,), int8_output=True)
    rgb = make_tflite(d / "r", "rgbnet", (1, 3, 64, 64), 68, "rgb", (127.5,), (128.0,), int8_output=False, seed=3)
    res = render(model, "android", d / "proj", app_id="org.example.track")
    run = compile_cli(res, d)
    rgb_res = render(rgb, "android", d / "rgbproj")

    def spec_file(facts, **over):
        s = {**facts.spec_json(), **over}
        f = d / f"spec{len(list(d.glob('spec*')))}.txt"
        f.write_text("".join(f"{k}={','.join(map(repr, v)) if isinstance(v, list) else (str(v).lower() if isinstance(v, bool) else v)}\n"
                             for k, v in s.items()))
        return f

    return {"run": run, "dir": d, "facts": res.facts, "model": model, "rgb": rgb, "rgb_facts": rgb_res.facts,
            "spec_file": spec_file}


def _image():
    """A real face photo (BGR, reduced to 320 px wide) and its Haar box, or a drawn test image when the data is absent."""
    import cv2

    from devicekit.face_data import face_data_dir

    base = face_data_dir()
    if base is not None and (base / "unlabeled" / "single_face.jpg").exists():
        img = cv2.imread(str(base / "unlabeled" / "single_face.jpg"))
        img = cv2.resize(img, (320, round(img.shape[0] * 320 / img.shape[1])), interpolation=cv2.INTER_AREA)
        from devicekit.face.detect import detect_faces

        faces = detect_faces(img)
        if faces:
            return img, faces[0]
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8), (7, 7), 2)
    cv2.circle(img, (160, 120), 60, (40, 180, 220), -1)
    return img, (100, 60, 120, 120)


def _write_frame(path: Path, bgr: np.ndarray) -> None:
    h, w = bgr.shape[:2]
    argb = (0xFF << 24) | (bgr[..., 2].astype(np.int64) << 16) | (bgr[..., 1].astype(np.int64) << 8) | bgr[..., 0]
    path.write_text(f"{w} {h}\n" + " ".join(map(str, argb.ravel().tolist())) + "\n")


def _reference_plane(bgr: np.ndarray, color: str, box, width: int, height: int) -> np.ndarray:
    """The documented sampling in float64: bilinear at input-pixel centres, black outside, n x n supersampling."""
    b, g, r = (bgr[..., i].astype(np.int64) for i in range(3))
    if color == "gray":
        src = ((r * 9798 + g * 19235 + b * 3735 + 16384) >> 15)[..., None].astype(np.float64)
    else:
        src = np.stack([r, g, b] if color == "rgb" else [b, g, r], -1).astype(np.float64)
    cx, cy, size, ang = box
    k = max(width, height) / size
    n = math.ceil(0.5 / k) if k < 0.5 else 1
    H, W = src.shape[:2]
    pad = np.zeros((H + 2, W + 2, src.shape[2]))
    pad[1:-1, 1:-1] = src
    acc = np.zeros((height, width, src.shape[2]))
    for sy in range(n):
        for sx in range(n):
            u = np.arange(width)[None, :] + (sx + 0.5) / n - width / 2
            v = np.arange(height)[:, None] + (sy + 0.5) / n - height / 2
            c, s = math.cos(ang), math.sin(ang)
            x = cx + (c * u - s * v) / k - 0.5
            y = cy + (s * u + c * v) / k - 0.5
            x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
            fx, fy = (x - x0)[..., None], (y - y0)[..., None]
            x0c, y0c = np.clip(x0 + 1, 0, W + 1), np.clip(y0 + 1, 0, H + 1)
            x1c, y1c = np.clip(x0 + 2, 0, W + 1), np.clip(y0 + 2, 0, H + 1)
            acc += ((1 - fy) * ((1 - fx) * pad[y0c, x0c] + fx * pad[y0c, x1c])
                    + fy * ((1 - fx) * pad[y1c, x0c] + fx * pad[y1c, x1c]))
    return acc / (n * n)


def _boxes(face):
    from devicekit.face.crop import CROP_POLICY, box_from_detection

    b = box_from_detection(face, CROP_POLICY)
    return [(b.cx, b.cy, b.size, 0.0), (b.cx + 13.3, b.cy - 7.1, b.size * 0.8, 0.0),
            (b.cx, b.cy, b.size * 1.7, 0.3), (b.cx - 40, b.cy + 10, 400.0, 0.0), (5.0, 7.0, 90.0, 0.0)]


def test_spec_is_the_manifest(kt):
    assert json.loads(kt["run"]("spec")) == {**kt["facts"].spec_json(), "modelAsset": "oddgray.tflite",
                                             "modelSha256": kt["facts"].sha256, "outputIndex": 0}


def test_preprocess_matches_python(kt):
    import cv2

    img, face = _image()
    d = kt["dir"]
    boxes = _boxes(face)
    frame, box_file = write_inputs(d, "", img, boxes)
    f = kt["facts"]
    assert np.array_equal(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY),
                          ((img[..., 2].astype(int) * 9798 + img[..., 1].astype(int) * 19235 + img[..., 0].astype(int) * 3735 + 16384) >> 15))
    # float input: the normalised values agree with the float64 reference
    for color, ch in (("gray", 1), ("rgb", 3), ("bgr", 3)):
        mean, std = [10.0, 20.0, 30.0][:ch], [50.0, 60.0, 70.0][:ch]
        spec = kt["spec_file"](f, inputDtype="float32", color=color, channels=ch, mean=mean, std=std)
        got = np.array([list(map(float, line.split())) for line in kt["run"]("preprocess", frame, box_file, spec=spec).splitlines()])
        for row, box in zip(got, boxes):
            ref = (_reference_plane(img, color, box, f.width, f.height) - mean) / std
            np.testing.assert_allclose(row.reshape(f.height, f.width, ch), ref, atol=2e-4)
    # int8 input of the real manifest: q = rint(x / scale + zero_point) (half to even), at most one step from float64
    got = np.array([list(map(int, line.split())) for line in kt["run"]("preprocess", frame, box_file).splitlines()])
    for row, box in zip(got, boxes):
        x = (_reference_plane(img, "gray", box, f.width, f.height)[..., 0] - f.mean[0]) / f.std[0]
        q = np.clip(np.rint(x / f.input_scale + f.input_zero_point), -128, 127)
        diff = np.abs(row.reshape(f.height, f.width) - q)
        assert diff.max() <= 1 and (diff == 0).mean() > 0.99
    # the square RGB model: the same crop as devicekit's Python crop (OpenCV warpAffine) for the detection box
    from devicekit.face.crop import CropBox, crop_image

    rf = kt["rgb_facts"]
    spec = kt["spec_file"](rf, inputDtype="float32", mean=[0.0] * 3, std=[1.0] * 3)
    cx, cy, size, _ = boxes[0]
    (d / "boxes3.txt").write_text(f"{cx!r} {cy!r} 100.0 0.0\n{cx!r} {cy!r} {size!r} 0.0\n")
    out = kt["run"]("preprocess", frame, str(d / "boxes3.txt"), spec=spec).splitlines()
    for line, side, mean_tol, max_tol in ((out[0], 100.0, 0.35, 2), (out[1], size, 1.5, 40)):
        row = np.array(list(map(float, line.split())))
        ref = crop_image(img[..., ::-1].copy(), CropBox(cx, cy, side), rf.width).astype(np.float64)
        diff = np.abs(row.reshape(rf.height, rf.width, 3) - ref)
        # side 100 -> 64: both bilinear (OpenCV: 5-bit fixed-point weights, uint8 result); the detection
        # box shrinks more than 2x, where OpenCV area-averages first and the Kotlin code supersamples
        assert diff.mean() < mean_tol and diff.max() <= max_tol, (side, diff.mean(), diff.max())


def test_decoding_real_outputs_matches_python(kt):
    from ai_edge_litert.interpreter import Interpreter

    from devicekit.face.crop import CropBox, to_image

    img, face = _image()
    d = kt["dir"]
    boxes = _boxes(face)
    frame, box_file = write_inputs(d, "2", img, boxes)
    f = kt["facts"]
    inputs = [np.array(list(map(int, line.split())), np.int8) for line in
              kt["run"]("preprocess", frame, box_file).splitlines()]
    it = Interpreter(model_path=str(kt["model"]))
    it.allocate_tensors()
    lines, refs = [], []
    for x, box in zip(inputs, boxes):
        it.set_tensor(it.get_input_details()[0]["index"], x.reshape(1, f.height, f.width, 1))
        it.invoke()
        raw = it.get_tensor(it.get_output_details()[0]["index"]).ravel()
        lines.append(" ".join(map(repr, box)) + " " + " ".join(map(str, raw.tolist())))
        pts = (raw.astype(np.float64) - f.output_zero_point) * f.output_scale
        u, v = pts.reshape(-1, 2).T
        cx, cy, size, ang = box
        k = max(f.width, f.height) / size
        c, s = math.cos(ang), math.sin(ang)
        du, dv = (u - f.width / 2) / k, (v - f.height / 2) / k
        refs.append(np.stack([cx + c * du - s * dv, cy + s * du + c * dv], -1).ravel())
    assert len({ln.split(" ", 4)[4] for ln in lines}) > 1  # the model's outputs differ between crops
    (d / "dec.txt").write_text("\n".join(lines) + "\n")
    got = np.array([list(map(float, ln.split())) for ln in kt["run"]("decode", str(d / "dec.txt")).splitlines()])
    np.testing.assert_allclose(got, np.array(refs), atol=2e-3)
    # float outputs of the square model decode like devicekit.face.crop.to_image (the Python inverse crop)
    rf = kt["rgb_facts"]
    spec = kt["spec_file"](rf)
    rng = np.random.default_rng(5)
    raw = rng.uniform(0, rf.width, (3, rf.num_landmarks * 2)).astype(np.float32)
    box = boxes[0]
    (d / "dec2.txt").write_text("".join(" ".join(map(repr, box[:3])) + " 0.0 " + " ".join(map(repr, r.tolist())) + "\n" for r in raw))
    got = np.array([list(map(float, ln.split())) for ln in kt["run"]("decode", str(d / "dec2.txt"), spec=spec).splitlines()])
    ref = np.stack([to_image(r.reshape(-1, 2), CropBox(*box[:3]), rf.width).ravel() for r in raw])
    np.testing.assert_allclose(got, ref, atol=2e-3)


def test_one_euro_matches_python(kt):
    from devicekit.face.one_euro import OneEuroFilter

    rng = np.random.default_rng(1)
    t = np.cumsum(rng.uniform(1 / 40, 1 / 20, 120))
    clean = np.stack([200 + 60 * np.sin(t * 2), 150 + 30 * np.cos(t * 3)] * 5, -1)
    noisy = clean + rng.normal(0, 2.0, clean.shape)
    noisy[60:] += 25  # a jump: the filter must follow fast motion
    for params in ({"min_cutoff": 1.0, "beta": 0.05, "d_cutoff": 1.0}, {"min_cutoff": 0.3, "beta": 0.5, "d_cutoff": 2.0}):
        path = kt["dir"] / "euro.txt"
        path.write_text(f"{params['min_cutoff']} {params['beta']} {params['d_cutoff']}\n"
                        + "".join(f"{ti!r} " + " ".join(repr(float(np.float32(v))) for v in row) + "\n" for ti, row in zip(t, noisy)))
        got = np.array([list(map(float, ln.split())) for ln in kt["run"]("oneeuro", str(path)).splitlines()])
        f = OneEuroFilter(**params)
        ref = np.stack([f(row.astype(np.float32), ti) for ti, row in zip(t, noisy)])
        np.testing.assert_allclose(got, ref, atol=1e-3)
        assert np.abs(np.diff(got[:60], 2, axis=0)).mean() < np.abs(np.diff(noisy[:60], 2, axis=0)).mean()  # it smooths


def test_result_files_identical_to_python_writer(kt, tmp_path):
    from devicekit.bench.results import read_app_dir
    from devicekit.device.loop import frames_csv, write_done

    rows = [(i, 10**12 + 33_000_000 * i, 400 + i, 5000 + 7 * i, 90, 5490 + 8 * i) for i in range(25)]
    (tmp_path / "rows.txt").write_text("".join(" ".join(map(str, r)) + "\n" for r in rows))
    for err in (None, 'delegate "gpu" failed: caf\u00e9 \\ \n tab\t'):
        kdir, pdir = tmp_path / f"k{err is None}", tmp_path / f"p{err is None}"
        kt["run"]("write", str(kdir), str(tmp_path / "rows.txt"), *([err] if err else []))
        pdir.mkdir()
        (pdir / "frames.csv").write_text(frames_csv(rows))
        write_done(pdir, {"protocol": 2, "status": "ok" if err is None else "error", "frames": len(rows), "error": err})
        assert (kdir / "frames.csv").read_bytes() == (pdir / "frames.csv").read_bytes()
        assert (kdir / "done.json").read_bytes() == (pdir / "done.json").read_bytes()
        dev = json.loads((kdir / "device.json").read_text())
        assert list(dev) == ["protocol", "model", "manufacturer", "os", "soc", "delegate", "threads", "thermal_start",
                             "thermal_end", "load_us", "first_frame_us", "peak_rss_kb", "runtime", "build_type",
                             "accelerator", "accelerator_note"]
        assert dev["protocol"] == 2 and dev["peak_rss_kb"] is None and dev["thermal_end"] == 1
        assert (dev["runtime"], dev["build_type"], dev["accelerator"]) == ("litert 2.1.0", "release", "cpu")
        app = read_app_dir(kdir)
        assert app.complete == (err is None) and len(app.rows) == 25 and app.rows[3][0] == 3
        assert not list(kdir.glob(".*tmp"))


def test_benchmark_loop_follows_the_protocol(kt, tmp_path):
    from devicekit.bench.results import read_app_dir

    kt["run"]("bench", str(tmp_path / "ok"), "12", "3")
    app = read_app_dir(tmp_path / "ok")
    assert app.complete, app.problems
    assert app.rows[:, 0].tolist() == list(range(12)) and (np.diff(app.rows[:, 1]) > 0).all()
    assert (app.rows[:, 5] >= app.rows[:, 2:5].sum(1) - 3).all() and app.rows[:, 2].min() > 0
    kt["run"]("bench", str(tmp_path / "bad"), "12", "3", "8")  # inference fails at loop frame 8 (measured frame 5)
    app = read_app_dir(tmp_path / "bad")
    assert not app.complete and app.done["status"] == "error" and "frame 8" in app.done["error"]
    assert len(app.rows) == 5 and app.done["frames"] == 5  # rows measured before the failure are kept


def _web_quantize(cfg: dict, pixels: list[int]) -> list[int]:
    """The web app's toInput (mobile_templates/web/js/pipeline.js) on a 1xN gray image with these pixel values."""
    node = shutil.which("node")
    if node is None:
        return []
    js = Path(__file__).resolve().parent.parent / "mobile_templates" / "web" / "js" / "pipeline.js"
    rgba = [v for p in pixels for v in (p, p, p, 255)]
    code = (f"import {{ toInput }} from '{js.as_posix()}';\n"
            f"console.log(JSON.stringify(Array.from(toInput({json.dumps(cfg)}, new Uint8ClampedArray({json.dumps(rgba)})))));\n")
    p = subprocess.run([node, "--input-type=module", "-e", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_quantize_rounds_half_to_even_in_kotlin_python_and_js(kt):
    """One rounding rule: Preprocess.kt, the Python port (= devicekit.runtime's np.rint) and the web app agree on ties."""
    from devicekit.app import port

    f = kt["facts"]
    pixels = [0, 1, 3, 5, 7, 9, 11, 4, 250, 255]  # x = pixel; x / 2 = 0.5, 1.5, 2.5, ... are exact ties
    for dtype, zp in (("int8", 0), ("int8", -3), ("uint8", 3)):
        over = {"inputDtype": dtype, "inputScale": 2.0, "inputZeroPoint": zp, "mean": [0.0], "std": [1.0]}
        spec = {**f.spec_json(), **over}
        (kt["dir"] / "q.txt").write_text("".join(f"{float(p)!r}\n" for p in pixels))
        got = [int(v) for v in kt["run"]("quantize", str(kt["dir"] / "q.txt"), spec=kt["spec_file"](f, **over)).split()]
        py = [int(v) for v in port.quantize(spec, np.asarray(pixels, np.float32))]
        assert got == py, (dtype, zp, got, py)
        if zp == 0 and dtype == "int8":
            assert got[:7] == [0, 0, 2, 2, 4, 4, 6]  # half to even; half up would give 0, 1, 2, 3, 4, 5, 6
        web = _web_quantize({**spec, "inputWidth": len(pixels), "inputHeight": 1, "channels": 1, "color": "gray",
                             "inputLayout": "NHWC"}, pixels)
        assert not web or web == py, (dtype, zp, web, py)
    # and the runtime devicekit verifies with quantises the same way (TFLiteRunner.to_input on the real int8 model)
    from devicekit.runtime import TFLiteRunner

    r = TFLiteRunner(kt["model"])
    x = np.random.default_rng(7).uniform(-1.2, 1.2, (1, f.height, f.width, 1)).astype(np.float32)
    (kt["dir"] / "q2.txt").write_text("".join(f"{float(v)!r}\n" for v in x.ravel()))
    got = np.array(kt["run"]("quantize", str(kt["dir"] / "q2.txt")).split(), np.int64)
    assert np.array_equal(got, r.to_input(x).ravel().astype(np.int64))


def test_golden_check_matches_python_and_the_bench_reader(kt, tmp_path):
    from devicekit.app.golden import judge, landmark_errors
    from devicekit.bench.results import read_app_dir

    f = kt["facts"]
    rng = np.random.default_rng(3)
    ref = [rng.uniform(0, 70, f.num_landmarks * 2), rng.normal(0, 1, 7)]
    dev = [ref[0] + rng.normal(0, 0.3, ref[0].shape), ref[1] * 1.01]
    (tmp_path / "g.txt").write_text("0\n" + "".join(f"o{i} " + " ".join(repr(float(np.float32(v))) for v in r) + "\n"
                                                    + " ".join(repr(float(np.float32(v))) for v in d) + "\n"
                                                    for i, (r, d) in enumerate(zip(ref, dev))))
    got = json.loads(kt["run"]("golden", str(tmp_path / "g.txt"), str(tmp_path / "run")).splitlines()[0])
    doc = {"outputs": [{"name": f"o{i}", "values": [float(np.float32(v)) for v in r]} for i, r in enumerate(ref)],
           "landmarks": {"output": 0, "values_per_landmark": 2, "coords": "input_pixels", "input_width": f.width,
                         "input_height": f.height}}
    py = landmark_errors(doc, [np.asarray(d, np.float32) for d in dev])
    assert got["protocol"] == py["protocol"] == 2
    assert got["landmarks_px_mean"] == pytest.approx(py["landmarks_px_mean"], rel=1e-6) and got["landmarks_px_mean"] > 0.2
    assert got["landmarks_px_max"] == pytest.approx(py["landmarks_px_max"], rel=1e-6)
    for a, b in zip(got["outputs"], py["outputs"]):
        assert a["name"] == b["name"] and a["rel_l2"] == pytest.approx(b["rel_l2"], rel=1e-5)
        assert a["max_abs"] == pytest.approx(b["max_abs"], rel=1e-5)
    # the file the app writes is what devicekit bench reads and judges
    (tmp_path / "run" / "done.json").write_text(json.dumps({"protocol": 2, "status": "ok", "frames": 0, "error": None}))
    read = read_app_dir(tmp_path / "run").golden
    assert read == got and judge(read, {"landmarks_mean_px": 0.5})["passed"] is (got["landmarks_px_mean"] <= 0.5)


def test_detector_map_matches_python(kt):
    from devicekit.face.boxmap import apply_keypoint_map, load_maps

    rng = np.random.default_rng(11)
    m = {"k": 2.6, "dx": 0.02, "dy": 0.23}
    pts = [rng.uniform(50, 400, 6) for _ in range(5)]
    (kt["dir"] / "dm.txt").write_text(f"{m['k']} {m['dx']} {m['dy']}\n" + "".join(" ".join(map(repr, p)) + "\n" for p in pts))
    out = kt["run"]("detmap", str(kt["dir"] / "dm.txt")).splitlines()
    for line, p in zip(out, pts):
        ref = apply_keypoint_map(m, p[0:2], p[2:4], p[4:6])
        np.testing.assert_allclose([float(v) for v in line.split()], ref, rtol=1e-12)
    kp = load_maps()["keypoints"]
    assert [float(v) for v in out[-1].split()] == [kp["k"], kp["dx"], kp["dy"]]  # ModelConfig carries the manifest's map


def test_kotlin_preprocessing_makes_the_golden_input(kt):
    """What the androidTest checks on a phone, here on the JVM: the module's Preprocessor on golden_face.png with
    golden.json's crop gives golden_input.bin (made by devicekit/app/port.py, the Python port that also stands
    in for the Swift Preprocessor)."""
    from devicekit.app import port
    from devicekit.app.golden import face

    proj = kt["dir"] / "proj"
    gdir = proj / "app/src/androidTest/assets/golden"
    doc = json.loads((gdir / "golden.json").read_text())
    img, _ = face()
    frame, box_file = write_inputs(kt["dir"], "golden", img[..., ::-1], [tuple(doc["image"]["crop"])])
    got = np.array(kt["run"]("preprocess", frame, box_file).split(), np.int64)
    want = np.frombuffer((gdir / "golden_input.bin").read_bytes(), np.int8).astype(np.int64)
    diff = np.abs(got - want)
    assert got.shape == want.shape and diff.max() <= 1 and (diff == 0).mean() > 0.99
    # the float path, value by value: Kotlin and the Python port in the same float32 arithmetic
    f = kt["facts"]
    over = {"inputDtype": "float32", "mean": [100.0], "std": [50.0]}
    got = np.array(kt["run"]("preprocess", frame, box_file, spec=kt["spec_file"](f, **over)).split(), np.float32)
    py = port.input_tensor({**f.spec_json(), **over}, img, tuple(doc["image"]["crop"])).ravel()
    np.testing.assert_allclose(got, py, atol=2e-6)
