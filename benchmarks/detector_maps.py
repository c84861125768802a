"""Face detector keypoints -> the crop policy's Haar box: the mapping the Android (ML Kit) and iOS (Vision) apps
apply, fitted on the face-data cache and stored in every manifest (preprocess.crop.detector_maps).

    nice .venv/bin/python benchmarks/detector_maps.py --out benchmarks/detector_maps.md

The crop policy's constants (enlarge, shift_y) were set for OpenCV's Haar box. ML Kit and Vision cannot run on
this machine, and their boxes sit elsewhere on the face; what both report with a documented anatomical meaning
is the eye centres and the mouth (ML Kit LANDMARK_MODE_ALL: LEFT_EYE, RIGHT_EYE, MOUTH_LEFT/RIGHT; Vision
VNFaceLandmarks2D: leftPupil, rightPupil, outerLips). So the mapping goes from those three points to the Haar
box: scale s = (eye distance + eye-to-mouth distance) / 2, Haar side = k * s, Haar centre = eye midpoint +
(dx, dy) * s (medians). Fitted on the unlabeled photos and every 4th video frame with exactly one Haar face,
their keypoints from the teacher (MediaPipe Face Mesh -> iBUG 68, scripts/face_teacher.py); evaluated on the
human-annotated iBUG faces (kept for evaluation only). Writes devicekit/face/detector_maps.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from common import ROOT, face_dir, machine  # noqa: E402
from web_detector import images  # noqa: E402  (photos and every 4th video frame of the face-data cache)

OUT_JSON = ROOT / "devicekit" / "face" / "detector_maps.json"


def keypoints(p68: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """iBUG 68 -> (image-left eye centre, image-right eye centre, mouth centre between the corners)."""
    return p68[36:42].mean(0), p68[42:48].mean(0), (p68[48] + p68[54]) / 2


def ratios(p68: np.ndarray, haar) -> tuple[float, float, float]:
    from devicekit.face.boxmap import keypoint_scale

    left, right, mouth = keypoints(p68)
    e, s = (left + right) / 2, keypoint_scale(left, right, mouth)
    x, y, w, h = haar
    return max(w, h) / s, (x + w / 2 - e[0]) / s, (y + h / 2 - e[1]) / s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "detector_maps.md")
    a = ap.parse_args()
    import cv2

    from devicekit.face.boxmap import apply_keypoint_map
    from devicekit.face.crop import CropBox
    from devicekit.face.detect import detect_faces
    from devicekit.verify.annotations import read_pts
    from face_teacher import Teacher

    unlabeled = face_dir()
    base = unlabeled.parent
    teacher = Teacher(base / "teacher" / "face_landmark.tflite")
    fit = []
    for name, bgr in images(unlabeled, ("*.jpg", "*.png")):
        faces = detect_faces(bgr)
        if len(faces) != 1:
            continue
        x, y, w, h = faces[0]
        p68, _, score = teacher.label(bgr, CropBox(x + w / 2, y + h / 2 + 0.1 * h, 1.5 * w))
        if score < 0.5:
            continue
        fit.append((name, *ratios(p68, faces[0])))
    r = np.asarray([f[1:] for f in fit])
    k, dx, dy = (float(v) for v in np.median(r, 0))
    res = r - [k, dx, dy]
    ev = []
    for pts in sorted((base / "annotated").glob("*.pts")):
        img = next((cv2.imread(str(q)) for q in pts.parent.glob(pts.stem + ".*") if q.suffix != ".pts"), None)
        p68 = read_pts(pts)
        c = p68.mean(0)  # the annotated face: the Haar face around its landmarks (an image may hold several faces)
        faces = [f for f in (detect_faces(img) if img is not None else []) if f[0] < c[0] < f[0] + f[2] and f[1] < c[1] < f[1] + f[3]]
        if len(faces) != 1:
            continue
        hx, hy, hw, hh = faces[0]
        mx, my, mw, _ = apply_keypoint_map({"k": k, "dx": dx, "dy": dy}, *keypoints(p68))
        side = max(hw, hh)
        ev.append((pts.stem, mw / side, (mx + mw / 2 - hx - hw / 2) / side, (my + mw / 2 - hy - hh / 2) / side))
    maps = {
        "keypoints": {"kind": "keypoints", "k": round(k, 4), "dx": round(dx, 4), "dy": round(dy, 4),
                      "for": ["mlkit-face (LEFT_EYE, RIGHT_EYE, MOUTH_LEFT/RIGHT)", "apple-vision-face (leftPupil, rightPupil, outerLips)"],
                      "fit": {"images": len(fit), "residual_p10": [round(float(np.percentile(res[:, i], 10)), 4) for i in range(3)],
                              "residual_p90": [round(float(np.percentile(res[:, i], 90)), 4) for i in range(3)],
                              "keypoints": "teacher landmarks (MediaPipe Face Mesh -> iBUG 68) on the face-data cache's unlabeled photos and every 4th video frame",
                              "target": "OpenCV Haar box (devicekit.face.detect)"}},
        "command": "benchmarks/detector_maps.py",
    }
    OUT_JSON.write_text(json.dumps(maps, indent=2) + "\n")
    lines = [
        "# Detector keypoints -> Haar-equivalent box (ML Kit on Android, Vision on iOS)",
        "",
        "Command: `nice .venv/bin/python benchmarks/detector_maps.py --out benchmarks/detector_maps.md`  ",
        f"Machine: {machine()}  ",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"Fit: {len(fit)} images with one Haar face (face-data cache photos, every 4th video frame); eye and mouth",
        "centres from the teacher's iBUG-68 landmarks. s = (eye distance + eye-to-mouth distance) / 2.",
        "",
        "| quantity | median | residual p10 | residual p90 |",
        "|---|---|---|---|",
        f"| Haar side / s (k) | {k:.4f} | {np.percentile(res[:, 0], 10):+.4f} | {np.percentile(res[:, 0], 90):+.4f} |",
        f"| (Haar cx - eye midpoint x) / s (dx) | {dx:+.4f} | {np.percentile(res[:, 1], 10):+.4f} | {np.percentile(res[:, 1], 90):+.4f} |",
        f"| (Haar cy - eye midpoint y) / s (dy) | {dy:+.4f} | {np.percentile(res[:, 2], 10):+.4f} | {np.percentile(res[:, 2], 90):+.4f} |",
        "",
        "Evaluation on the human-annotated iBUG faces (not used for the fit): the box mapped from the annotated",
        "eye and mouth centres against the Haar box on the same image, in Haar box sides.",
        "",
        "| face | side ratio | centre dx | centre dy |",
        "|---|---|---|---|",
        *[f"| {n} | {s:.3f} | {cx:+.3f} | {cy:+.3f} |" for n, s, cx, cy in ev],
        "",
        "Not run here: ML Kit and Vision themselves (Android / iOS only). The mapping assumes their eye and mouth",
        "keypoints mean what the iBUG points mean (eye centre, mouth corners); a phone's own boxes are not used.",
        "",
        f"devicekit/face/detector_maps.json: `keypoints: k {k:.4f}, dx {dx:.4f}, dy {dy:.4f}`",
    ]
    a.out.write_text("\n".join(lines) + "\n")
    print(a.out.read_text())


if __name__ == "__main__":
    main()
