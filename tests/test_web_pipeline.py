"""The web app's JavaScript pre/post-processing against the Python reference, run in Node (no browser needed).

pipeline.js re-implements devicekit/face/crop.py (crop policy, crop with
cv2's INTER_AREA pre-reduction and INTER_LINEAR warp, inverse mapping),
InputSpec.normalize + TFLiteRunner's int8 quantisation, and the 1-euro filter;
detector.js the BlazeFace decoder of devicekit/web/detector.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
JS = ROOT / "mobile_templates" / "web" / "js"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed (scripts/setup-system.sh)")

HARNESS = """
import { readFileSync } from 'node:fs';
import { cropImage, toInput, decode, boxFromLandmarks, boxFromDetection, toHaar, OneEuro } from '%(js)s/pipeline.js';
import { anchors } from '%(js)s/detector.js';
const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const rgba = new Uint8ClampedArray(readFileSync(job.image));
const frame = { data: rgba, width: job.width, height: job.height };
const out = { crops: [], inputs: [], decoded: [], boxes: [], det: [] };
for (const b of job.boxes) {
  const c = cropImage(frame, b, job.cfg.inputWidth);
  out.crops.push(Buffer.from(c.buffer).toString('base64'));
  out.inputs.push(Array.from(toInput(job.cfg, c)));
  out.decoded.push(decode(job.cfg, job.raw, b));
}
out.boxes = job.landmarks.map((p) => boxFromLandmarks(job.cfg, p));
out.det = job.dets.map((d) => boxFromDetection(job.cfg, ...d));
out.haar = job.dets.map((d) => toHaar(job.toHaar, ...d));
const f = new OneEuro(job.euro);
out.euro = job.track.map((p, i) => f.filter(p, i / 30));
out.anchors = anchors(128);
console.log(JSON.stringify(out));
"""


def _cfg(dtype="int8", color="rgb"):
    from devicekit.face.crop import CROP_POLICY, LANDMARK_BOX

    return {"inputWidth": 128, "inputHeight": 128, "channels": 3, "color": color, "inputLayout": "NHWC",
            "mean": [127.5, 127.5, 127.5], "std": [128.0, 128.0, 128.0], "inputDtype": dtype, "inputScale": 0.0078125,
            "inputZeroPoint": -1, "numLandmarks": 68, "valuesPerLandmark": 2, "outputDtype": "float32", "outputScale": 1.0,
            "outputZeroPoint": 0, "coords": "input_pixels", "cropEnlarge": CROP_POLICY["enlarge"],
            "cropShiftY": CROP_POLICY["shift_y"], "cropSquare": True, "landmarkBox": dict(LANDMARK_BOX)}


def _image():
    """A real face photo when the face data is fetched, else a textured synthetic frame (both 8-bit RGB)."""
    from devicekit.face_data import face_data_dir

    d = face_data_dir()
    p = d / "unlabeled" / "single_face.jpg" if d else None
    if p is not None and p.exists():
        import cv2

        img = cv2.imread(str(p))[..., ::-1]
        return np.ascontiguousarray(cv2.resize(img, (640, 480), interpolation=cv2.INTER_AREA))
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:480, 0:640]
    base = np.stack([(x * 0.4) % 256, (y * 0.5) % 256, ((x + y) * 0.3) % 256], -1)
    return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)


def test_js_pipeline_matches_python(tmp_path):
    from devicekit.config import InputSpec
    from devicekit.face.crop import CropBox, box_from_detection, box_from_landmarks, crop_image, to_image
    from devicekit.face.one_euro import OneEuroFilter
    from devicekit.mobile_templates.webapp import DETECTOR
    from devicekit.web.detector import anchors, to_haar

    img = _image()
    h, w = img.shape[:2]
    rgba = np.concatenate([img, np.full((h, w, 1), 255, np.uint8)], -1)
    (tmp_path / "img.rgba").write_bytes(rgba.tobytes())
    # crops that take the INTER_AREA path (scale < 0.5), the direct warp, and crops partly outside the frame
    boxes = [CropBox(320.3, 241.7, 300.0), CropBox(300.0, 200.0, 180.5), CropBox(40.0, 30.0, 220.0),
             CropBox(600.2, 450.9, 400.0), CropBox(321.0, 239.0, 90.0)]
    rng = np.random.default_rng(1)
    raw = rng.uniform(0, 128, (68, 2))
    pts = rng.uniform(100, 400, (3, 68, 2))
    track = np.cumsum(rng.normal(0, 3, (40, 68, 2)), 0) + 200
    euro = {"min_cutoff": 1.3, "beta": 0.07, "d_cutoff": 1.0}
    cfg = _cfg()
    job = {"image": str(tmp_path / "img.rgba"), "width": w, "height": h, "cfg": cfg,
           "boxes": [{"cx": b.cx, "cy": b.cy, "size": b.size} for b in boxes], "raw": raw.ravel().tolist(),
           "landmarks": pts.tolist(), "dets": [[10.5, 20.0, 150.0, 170.0], [300, 100, 80, 60]], "euro": euro,
           "track": track.tolist(), "toHaar": DETECTOR["toHaar"]}
    (tmp_path / "job.json").write_text(json.dumps(job))
    (tmp_path / "h.mjs").write_text(HARNESS % {"js": JS.as_posix()})
    r = subprocess.run([NODE, str(tmp_path / "h.mjs"), str(tmp_path / "job.json")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)

    spec = InputSpec(shape=(1, 3, 128, 128), mean=(127.5,), std=(128.0,), color="rgb")
    for b, c64, x_js in zip(boxes, out["crops"], out["inputs"]):
        js = np.frombuffer(__import__("base64").b64decode(c64), np.uint8).reshape(128, 128, 4)[..., :3].astype(int)
        py = crop_image(img, b, 128).astype(int)
        diff = np.abs(js - py)
        # pipeline.js follows cv2's arithmetic (INTER_AREA in float32, the warp in fixed point): bit-identical.
        # (With float64 area sums instead, 0.08% of the values were one level off, and an int8 heatmap model
        # moved landmarks by up to 0.9 px: exactness matters.)
        assert diff.max() == 0, (b, diff.max(), (diff > 0).mean())
        # int8 model input: Python's normalise + quantise of the JS crop equals the JS input exactly
        xf = spec.normalize(js.astype(np.uint8))
        q = np.clip(np.round(xf / np.float32(0.0078125) + -1), -128, 127).astype(np.int8).transpose(0, 2, 3, 1).ravel()
        assert np.array_equal(q, np.asarray(x_js, np.int8))
    for b, dec in zip(boxes, out["decoded"]):
        np.testing.assert_allclose(np.asarray(dec), to_image(raw, b, 128), atol=1e-3)
    for p, bj in zip(pts, out["boxes"]):
        bp = box_from_landmarks(p)
        np.testing.assert_allclose([bj["cx"], bj["cy"], bj["size"]], [bp.cx, bp.cy, bp.size], rtol=1e-12)
    for d, bj in zip(job["dets"], out["det"]):
        bp = box_from_detection(d)
        np.testing.assert_allclose([bj["cx"], bj["cy"], bj["size"]], [bp.cx, bp.cy, bp.size], rtol=1e-12)
    for d, hj in zip(job["dets"], out["haar"]):
        np.testing.assert_allclose(hj, to_haar(d, DETECTOR["toHaar"]), rtol=1e-12)
    f = OneEuroFilter(**euro)
    ref = np.stack([f(p, i / 30) for i, p in enumerate(track)])
    np.testing.assert_allclose(np.asarray(out["euro"]), ref, atol=1e-9)
    np.testing.assert_allclose(np.asarray(out["anchors"]), anchors(128), atol=1e-12)
    assert len(out["anchors"]) == 896
