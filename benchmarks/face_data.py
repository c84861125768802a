#!/usr/bin/env python3
"""Count the faces in the face-data cache's photos (scripts/fetch_face_data.py), per file and per source.

A face counts when OpenCV Haar (devicekit.face.detect.detect_faces) finds it AND
the MediaPipe teacher (scripts/face_teacher.py Teacher.label) scores it > 0.5,
from the training script's start box. Videos are not counted (one identity each).

Usage: ``python benchmarks/face_data.py`` -> benchmarks/face_data.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from common import ROOT, face_dir, machine  # noqa: E402

PHOTO = {".jpg", ".jpeg", ".png", ".ppm"}


def count(unl: Path) -> list[tuple[str, str, int, int]]:
    """(file, WxH, Haar detections, teacher-confirmed faces) for every photo in ``unl``."""
    import cv2
    from face_teacher import Teacher

    from devicekit.face.crop import box_from_detection
    from devicekit.face.detect import detect_faces

    teacher = Teacher(unl.parent / "teacher" / "face_landmark.tflite")
    rows = []
    for p in sorted(f for f in unl.iterdir() if f.suffix.lower() in PHOTO):
        img = cv2.imread(str(p))
        faces = detect_faces(img)
        starts = [box_from_detection(f, {"enlarge": 1.5, "shift_y": 0.1, "square": True}) for f in faces]
        good = sum(teacher.label(img, s)[2] > 0.5 for s in starts)
        rows.append((p.name, f"{img.shape[1]}x{img.shape[0]}", len(faces), good))
    return rows


def main() -> int:
    unl = face_dir()
    if unl is None:
        print("no face data (scripts/fetch_face_data.py could not reach PyPI)", file=sys.stderr)
        return 3
    sources = json.loads((unl.parent / "SOURCES.json").read_text())["unlabeled"]
    owner = {f: s["package"] for s in sources for f in s["files"]}
    rows = count(unl)
    lines = ["# Faces in the face-data cache", "", f"`python benchmarks/face_data.py` on {machine()}.", "",
             "| file | source | size | Haar | teacher > 0.5 |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {n} | {owner.get(n, '?')} | {wh} | {h} | {g} |" for n, wh, h, g in rows]
    per: dict[str, list[int]] = {}
    for n, _, h, g in rows:
        t = per.setdefault(owner.get(n, "?"), [0, 0, 0])
        t[0], t[1], t[2] = t[0] + 1, t[1] + h, t[2] + g
    lines += ["", "| source | license | photos | Haar | teacher > 0.5 |", "| --- | --- | --- | --- | --- |"]
    lic = {s["package"]: s["license"] for s in sources}
    lines += [f"| {k} | {lic.get(k, '?')} | {a} | {b} | {c} |" for k, (a, b, c) in per.items()]
    (ROOT / "benchmarks" / "face_data.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
