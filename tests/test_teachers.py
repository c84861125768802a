"""The demo model's teachers (scripts/face_teacher.py, scripts/faceapi_teacher.py): the flip map and the face-api.js port."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from verify_fixtures import face_data

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))


def test_flip_permutation_is_the_ibug_mirror():
    from face_teacher import FLIP

    assert sorted(FLIP.tolist()) == list(range(68))
    assert (FLIP[FLIP] == np.arange(68)).all()  # an involution
    assert FLIP[0] == 16 and FLIP[36] == 45 and FLIP[48] == 54 and FLIP[30] == 30 and FLIP[8] == 8


def _teachers():
    from face_teacher import Teacher
    from faceapi_teacher import FaceApiTeacher
    from fetch_faceapi_teacher import fetch

    data = face_data()
    try:
        manifest = fetch(data)
    except Exception as exc:  # npm missing or offline
        pytest.skip(f"face-api.js weights unavailable: {exc}")
    return Teacher(data / "teacher" / "face_landmark.tflite"), FaceApiTeacher(manifest)


def test_faceapi_port_agrees_with_mediapipe_and_is_mirror_symmetric():
    """The PyTorch port of FaceLandmark68Net lands on the same face as MediaPipe (a wrong port, e.g. NCHW/NHWC or
    padding, is off by far more), and its mirror-averaged labels mirror exactly with the image."""
    import cv2
    from face_teacher import FLIP
    from faceapi_teacher import FaceApiTeacher

    from devicekit.face.crop import box_from_detection
    from devicekit.face.detect import detect_faces

    mp, fa = _teachers()
    img = cv2.imread(str(face_data() / "unlabeled" / "single_face.jpg"))
    start = box_from_detection(detect_faces(img)[0], {"enlarge": 1.5, "shift_y": 0.1, "square": True})
    p68, _, score = mp.label(img, start)
    assert score > 0.5
    pf = fa.label_flip_tta(img, FaceApiTeacher.roi(p68))
    io = np.linalg.norm(p68[36] - p68[45])
    assert np.linalg.norm(pf - p68, axis=1).mean() / io < 0.08

    w = img.shape[1]
    roi = FaceApiTeacher.roi(p68)
    from devicekit.face.crop import CropBox

    mirrored = fa.label_flip_tta(np.ascontiguousarray(img[:, ::-1]), CropBox(w - roi.cx, roi.cy, roi.size))[FLIP]
    mirrored[:, 0] = w - mirrored[:, 0]
    assert np.linalg.norm(mirrored - pf, axis=1).mean() / io < 0.005
