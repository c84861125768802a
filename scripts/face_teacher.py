"""The teacher for the demo model's training labels: MediaPipe Face Mesh -> iBUG 68.

Teacher: ``face_landmark.tflite`` from the ``mediapipe==0.10.14`` wheel
(Apache-2.0; 468 points on a 192x192 RGB crop, input in [0, 1]), run with
ai_edge_litert. The crop follows MediaPipe's own ROI rule (box from the
previous landmarks, scaled 1.5, square, rotated so the eyes are level),
starting from the OpenCV Haar detection and refined twice.

468 -> 68 map (documented here, symmetric under the iBUG left/right flip):
all points but the jaw are single Face Mesh indices (MP68 below); the 17 jaw
points are resampled by arc length along the Face Mesh silhouette (MediaPipe's
FACE_OVAL, lower part) from the height of the outer eye corners on one side,
through the chin (152), to the same height on the other side, because the
iBUG contour is evenly spaced while the Face Mesh silhouette is not.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from devicekit.face.crop import CropBox, crop_image, to_image

# the index tables below are laid out by face region: not reformatted
# fmt: off
# iBUG index -> Face Mesh index, for iBUG points 17..67 (brows, nose, eyes, mouth)
MP68 = {
    17: 70, 18: 63, 19: 105, 20: 66, 21: 107, 22: 336, 23: 296, 24: 334, 25: 293, 26: 300,
    27: 168, 28: 197, 29: 5, 30: 4, 31: 98, 32: 97, 33: 2, 34: 326, 35: 327,
    36: 33, 37: 160, 38: 158, 39: 133, 40: 153, 41: 144, 42: 362, 43: 385, 44: 387, 45: 263, 46: 373, 47: 380,
    48: 61, 49: 40, 50: 37, 51: 0, 52: 267, 53: 270, 54: 291, 55: 321, 56: 314, 57: 17, 58: 84, 59: 91,
    60: 78, 61: 81, 62: 13, 63: 311, 64: 308, 65: 402, 66: 14, 67: 178,
}
# Face Mesh silhouette from the image-left temple down to the chin and up to the image-right temple
OVAL = [162, 127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152,
        377, 400, 378, 379, 365, 397, 288, 361, 323, 454, 356, 389]
TEACHER = {"name": "MediaPipe Face Mesh face_landmark.tflite", "package": "mediapipe==0.10.14",
           "license": "Apache-2.0", "points": 468, "map": "scripts/face_teacher.py MP68 + jaw arc-length resampling"}
SIZE = 192
# iBUG 68 left/right permutation (a horizontally flipped face's point i is the original's FLIP[i])
FLIP = np.array(
    [16 - i for i in range(17)] + [26, 25, 24, 23, 22, 21, 20, 19, 18, 17] + [27, 28, 29, 30, 35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65]
)
# fmt: on


def _resample(poly: np.ndarray, n: int) -> np.ndarray:
    seg = np.linalg.norm(np.diff(poly, axis=0), axis=1)
    s = np.concatenate([[0], np.cumsum(seg)])
    t = np.linspace(0, s[-1], n)
    return np.stack([np.interp(t, s, poly[:, 0]), np.interp(t, s, poly[:, 1])], 1)


def _cut_at_height(poly: np.ndarray, y: float) -> np.ndarray:
    """The part of a top-to-bottom polyline below height y (in the face frame), starting exactly at y."""
    for i in range(len(poly) - 1):
        a, b = poly[i], poly[i + 1]
        if (a[1] - y) * (b[1] - y) <= 0 and a[1] != b[1]:
            f = (y - a[1]) / (b[1] - a[1])
            return np.vstack([a + f * (b - a), poly[i + 1 :]])
    return poly


def mesh_to_ibug68(mesh: np.ndarray) -> np.ndarray:
    """[468, 2] Face Mesh points -> [68, 2] iBUG points (same coordinates)."""
    out = np.zeros((68, 2), np.float64)
    for k, v in MP68.items():
        out[k] = mesh[v]
    # jaw: work in a frame where the eyes are level, cut both halves at the eye-corner height
    le, re = mesh[33], mesh[263]
    ang = math.atan2(re[1] - le[1], re[0] - le[0])
    c, s = math.cos(-ang), math.sin(-ang)
    rot = np.array([[c, -s], [s, c]])
    oval = mesh[OVAL] @ rot.T
    eye_y = ((le + re) / 2 @ rot.T)[1]
    chin = OVAL.index(152)
    left = _cut_at_height(oval[: chin + 1], eye_y)
    right = _cut_at_height(oval[chin:][::-1], eye_y)[::-1]
    jaw = np.vstack([_resample(left, 9), _resample(right, 9)[1:]])
    out[:17] = jaw @ rot  # back to image orientation (rot is orthonormal)
    return out.astype(np.float32)


class Teacher:
    def __init__(self, model: str | Path):
        from ai_edge_litert.interpreter import Interpreter

        self.interp = Interpreter(model_path=str(model), num_threads=1)
        self.interp.allocate_tensors()
        self.inp = self.interp.get_input_details()[0]["index"]
        outs = self.interp.get_output_details()
        self.out_pts = next(d["index"] for d in outs if d["shape"][-1] == 1404)
        self.out_score = next(d["index"] for d in outs if d["shape"][-1] == 1)

    def run(self, image_bgr: np.ndarray, box: CropBox, depth: bool = False) -> tuple[np.ndarray, float]:
        """(468 mesh points in image pixels, face score); with ``depth`` [468, 3] x, y, z (z < 0 towards the camera,
        in image pixels: the model's crop-pixel depth scaled like x and y)."""
        crop = crop_image(image_bgr, box, SIZE)[..., ::-1].astype(np.float32) / 255.0
        self.interp.set_tensor(self.inp, crop[None])
        self.interp.invoke()
        raw = self.interp.get_tensor(self.out_pts).reshape(468, 3)
        score = float(1 / (1 + np.exp(-self.interp.get_tensor(self.out_score).ravel()[0])))
        pts = to_image(raw[:, :2], box, SIZE)
        if depth:
            pts = np.column_stack([pts, raw[:, 2] * (box.size / SIZE)]).astype(np.float32)
        return pts, score

    @staticmethod
    def roi(mesh: np.ndarray) -> CropBox:
        """MediaPipe's landmarks -> ROI rule: bbox centre, long side * 1.5, rotated to level the eyes."""
        le, re = mesh[33], mesh[263]
        ang = math.atan2(re[1] - le[1], re[0] - le[0])
        c, s = math.cos(-ang), math.sin(-ang)
        r = mesh @ np.array([[c, -s], [s, c]]).T
        lo, hi = r.min(0), r.max(0)
        ctr = ((lo + hi) / 2) @ np.array([[c, -s], [s, c]])
        return CropBox(float(ctr[0]), float(ctr[1]), float((hi - lo).max() * 1.5), ang)

    def label(self, image_bgr: np.ndarray, start: CropBox, iters: int = 3, depth: bool = False) -> tuple[np.ndarray, np.ndarray, float]:
        """(68 iBUG points, 468 mesh points, face score) in image pixels, refining the ROI ``iters`` times; with
        ``depth`` the mesh is [468, 3] x, y, z (see ``run``)."""
        box = start
        mesh, score = self.run(image_bgr, box, depth)
        for _ in range(iters - 1):
            box = self.roi(mesh[:, :2])
            mesh, score = self.run(image_bgr, box, depth)
        return mesh_to_ibug68(mesh[:, :2]), mesh, score
