"""Face detector output -> the crop policy's (Haar) box: the mapping the generated apps apply.

The crop policy (``crop.CROP_POLICY``) was written for OpenCV's Haar box. The Android app (ML Kit) and the
iOS app (Vision) map their detector's eye and mouth keypoints to the Haar-equivalent box with the constants
in ``detector_maps.json`` (measured by ``benchmarks/detector_maps.py`` on the face-data cache); they travel in
every manifest as ``preprocess.crop.detector_maps``. ``apply_keypoint_map`` is the Python twin of the apps'
DetectorMap.fromKeypoints (the tests run both on the same points).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

MAPS_FILE = Path(__file__).resolve().parent / "detector_maps.json"


def load_maps() -> dict:
    """The measured maps ({} when the file is missing: the apps then use the detector's box unmapped)."""
    try:
        return json.loads(MAPS_FILE.read_text())
    except (OSError, ValueError):
        return {}


def keypoint_scale(left, right, mouth) -> float:
    """s = (eye distance + distance from the eye midpoint to the mouth) / 2."""
    ex, ey = (left[0] + right[0]) / 2, (left[1] + right[1]) / 2
    return (math.hypot(right[0] - left[0], right[1] - left[1]) + math.hypot(mouth[0] - ex, mouth[1] - ey)) / 2


def apply_keypoint_map(m: dict, left, right, mouth) -> tuple[float, float, float, float]:
    """The Haar-equivalent square box (x, y, w, h) for two eye centres and the mouth centre (image pixels)."""
    s = keypoint_scale(left, right, mouth)
    ex, ey = (left[0] + right[0]) / 2, (left[1] + right[1]) / 2
    side = m["k"] * s
    cx, cy = ex + m["dx"] * s, ey + m["dy"] * s
    return (cx - side / 2, cy - side / 2, side, side)
