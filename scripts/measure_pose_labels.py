#!/usr/bin/env python3
"""Which labels for the pose views (scripts/pose_aug.py, train_heatmap2s.py --pose-aug): rotated or re-labelled?

On the pose-view cache (train_heatmap2s.pose_views), per |yaw| bucket, in % of the inter-ocular distance of the
teachers' mean: the rotated labels (``geom``) vs the teachers' mean re-run on the view (jaw, the rest), and the two
teachers against each other on the views and on the original faces (how much noisier the teachers get on a view).

  python scripts/measure_pose_labels.py --labels L.npz --pose-views P.npz
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_heatmap2s import JAW, collect, pose_views  # noqa: E402


def _nme(a, b, io_ref, sl=slice(None)):
    io = np.linalg.norm(io_ref[:, 36] - io_ref[:, 45], axis=-1)
    return np.linalg.norm(a[:, sl] - b[:, sl], axis=-1).mean(-1) / io


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path.home() / ".cache/devicekit/face-data"))
    ap.add_argument("--labels")
    ap.add_argument("--pose-views")
    a = ap.parse_args()
    data = Path(a.data)
    d = collect(data, Path(a.labels) if a.labels else data / "teacher-labels-v3.npz")
    p = pose_views(d, data, Path(a.pose_views) if a.pose_views else data / "pose-views-v4.npz")
    inner = np.r_[17:68]
    for split, src in (("train", "train"), ("sel", "val")):
        orig = _nme(d[f"{src}_mediapipe"], d[f"{src}_faceapi"], (d[f"{src}_mediapipe"] + d[f"{src}_faceapi"]) / 2)
        mp, fa, g = p[f"{split}_mediapipe"], p[f"{split}_faceapi"], p[f"{split}_geom"]
        t = (mp + fa) / 2
        yaw = np.abs(p[f"{split}_yaw"])
        for lo, hi in ((0, 20), (20, 30), (30, 41)):
            k = (yaw >= lo) & (yaw < hi) & (p[f"{split}_score"] > 0.5)
            if not k.any():
                continue
            row = {
                "split": split,
                "abs_yaw": [lo, hi],
                "views": int(k.sum()),
                "geom_vs_teachers_jaw": _nme(g[k], t[k], t[k], JAW).mean(),
                "geom_vs_teachers_inner": _nme(g[k], t[k], t[k], inner).mean(),
                "mediapipe_vs_faceapi_on_views": _nme(mp[k], fa[k], t[k]).mean(),
                "mediapipe_vs_faceapi_inner_on_views": _nme(mp[k], fa[k], t[k], inner).mean(),
                "mediapipe_vs_faceapi_on_originals": orig.mean(),
            }
            print(json.dumps({k2: round(float(v) * 100, 2) if isinstance(v, np.floating) else v for k2, v in row.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
