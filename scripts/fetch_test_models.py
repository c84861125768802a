#!/usr/bin/env python3
"""Fetch real third-party face models for the tests from PyPI wheels (pip, cached).

- ``mediapipe==0.10.14`` (no dependencies): the .tflite files it ships (face
  detector, face landmarker, the attention landmarker with custom ops, selfie
  segmentation with the custom Convolution2DTransposeBias op, ...).
- ``facenet-pytorch==2.6.0`` (MIT): MTCNN's trained PNet/RNet/ONet state dicts
  (``data/*.pt``) and the module that defines them (``models/mtcnn.py``), a
  PyTorch face model nobody here wrote. The package itself is not installed
  (it imports torchvision, which does not import beside the local torch wheel).

Nothing comes from a model hub. The download and extraction are devicekit.fetch's (the web app's
detector comes from the same wheel at run time). Cache: $DEVICEKIT_CACHE or ~/.cache/devicekit.
Prints the model directories. Exit 0 on success, 3 when PyPI cannot be reached
(tests then skip with that reason).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from devicekit.errors import DevicekitError
from devicekit.fetch import wheel_files
from devicekit.fetch.mediapipe import models
from devicekit.fsutil import cache_root

MTCNN_PACKAGE = "facenet-pytorch==2.6.0"
MTCNN_FILES = {
    "mtcnn.py": "facenet_pytorch/models/mtcnn.py",
    "pnet.pt": "facenet_pytorch/data/pnet.pt",
    "rnet.pt": "facenet_pytorch/data/rnet.pt",
    "onet.pt": "facenet_pytorch/data/onet.pt",
    "LICENSE.md": "facenet_pytorch-2.6.0.dist-info/LICENSE.md",
}


def cache_dir() -> Path:
    return cache_root()


def fetch(quiet: bool = True) -> Path:
    """The directory holding MediaPipe's models (devicekit.fetch.mediapipe); EnvironmentMissing with a reason when offline."""
    return models()


def fetch_mtcnn(quiet: bool = True) -> Path:
    """The directory holding facenet-pytorch's MTCNN definition and weights (see tests/mtcnn.py)."""
    return wheel_files(MTCNN_PACKAGE, MTCNN_FILES)


def main() -> int:
    try:
        print(fetch(quiet=False))
        print(fetch_mtcnn(quiet=False))
    except (DevicekitError, subprocess.SubprocessError, OSError) as exc:
        print(f"fetch_test_models: {exc.one_line() if isinstance(exc, DevicekitError) else exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
