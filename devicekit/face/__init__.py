"""Face front-end: detection (OpenCV Haar cascade from opencv-python), the crop policy and the inverse mapping.

The crop policy is data (``crop.CROP_POLICY``) and travels in every manifest
as ``preprocess["crop"]`` so the mobile templates crop the same way.
"""

from .crop import CROP_POLICY, CropBox, box_from_detection, box_from_landmarks, crop_image, detect_crop_box, to_crop, to_image
from .detect import detect_faces

__all__ = [
    "CROP_POLICY",
    "CropBox",
    "box_from_detection",
    "box_from_landmarks",
    "crop_image",
    "detect_crop_box",
    "detect_faces",
    "to_crop",
    "to_image",
]
