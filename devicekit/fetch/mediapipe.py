"""MediaPipe's face models from the ``mediapipe==0.10.14`` wheel on PyPI (Apache-2.0), cached.

The web app's face detector (BlazeFace short range), the face-data teacher (``face_landmark.tflite``) and
the third-party models the tests check and convert all come from this one wheel, extracted together into
``cache/test-models/mediapipe-0.10.14/`` (the folder name predates run-time use; kept so caches stay valid).
"""

from __future__ import annotations

from pathlib import Path

from . import wheel_files

PACKAGE = "mediapipe==0.10.14"
MODELS = {
    "face_detection_short_range.tflite": "mediapipe/modules/face_detection/face_detection_short_range.tflite",
    "face_detection_full_range_sparse.tflite": "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
    "face_landmark.tflite": "mediapipe/modules/face_landmark/face_landmark.tflite",
    "face_landmark_with_attention.tflite": "mediapipe/modules/face_landmark/face_landmark_with_attention.tflite",
    "selfie_segmentation.tflite": "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
    "iris_landmark.tflite": "mediapipe/modules/iris_landmark/iris_landmark.tflite",
}


def models() -> Path:
    """The folder holding every file of ``MODELS``; downloads the wheel once (EnvironmentMissing when offline)."""
    return wheel_files(PACKAGE, MODELS)


def model(name: str) -> Path:
    """One of ``MODELS`` (e.g. ``face_detection_short_range.tflite``), fetched when missing."""
    if name not in MODELS:
        raise KeyError(f"{name} is not one of the mediapipe models devicekit fetches: {sorted(MODELS)}")
    return models() / name
