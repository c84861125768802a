"""Face detection with OpenCV's Haar cascade (``haarcascade_frontalface_default.xml`` in opencv-python).

Boxes are (x, y, w, h) in image pixels, largest first. OpenCV is imported
inside the functions (it comes with the ``convert`` extra).
"""

from __future__ import annotations

import functools

import numpy as np

from ..errors import EnvironmentMissing

CASCADE = "haarcascade_frontalface_default.xml"


@functools.lru_cache(maxsize=1)
def _cascade():
    try:
        import cv2
    except ImportError:
        raise EnvironmentMissing("face detection needs OpenCV", hint="pip install 'devicekit[convert]'") from None
    clf = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE)
    if clf.empty():
        raise EnvironmentMissing(f"OpenCV could not load {CASCADE} from {cv2.data.haarcascades}")
    return clf


def to_gray(image: np.ndarray) -> np.ndarray:
    import cv2

    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[..., 0]
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def detect_faces(image_bgr: np.ndarray, min_size_frac: float = 0.08) -> list[tuple[int, int, int, int]]:
    """Faces in a BGR (or gray) uint8 image as (x, y, w, h), largest first."""
    gray = to_gray(image_bgr)
    import cv2

    gray = cv2.equalizeHist(gray)
    m = max(20, int(min(gray.shape[:2]) * min_size_frac))
    found = _cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(m, m))
    boxes = [tuple(int(v) for v in b) for b in (found if len(found) else [])]
    return sorted(boxes, key=lambda b: -b[2] * b[3])
