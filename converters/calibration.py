"""Calibration images: a folder of real photos -> model inputs.

Each image is decoded, converted to the spec's colour order, cropped (the
face crop policy when a face detector finds one, else a centre square) and
resized to the input size, then normalised by the spec. Unreadable files are
skipped, counted and reported. With no folder, a synthetic set is made and
the caller must warn loudly: int8 ranges calibrated on it are guesses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from devicekit.config import InputSpec
from devicekit.errors import InputError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".y4m"}
FRAMES_PER_VIDEO = 16


@dataclass
class CalibrationSet:
    pixels: np.ndarray  # [N, H, W, C] float32 0-255 in the spec's colour order
    inputs: np.ndarray  # [N, C, H, W] float32, normalised: the model input
    files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    synthetic: bool = False

    def to_json(self) -> dict:
        return {
            "count": int(len(self.inputs)),
            "synthetic": self.synthetic,
            "skipped": len(self.skipped),
            "skipped_files": self.skipped[:20],
            "source": "synthetic" if self.synthetic else (str(Path(self.files[0]).parent) if self.files else None),
            "video_frames": sum("#" in f for f in self.files),
        }


def to_model_pixels(image_bgr: np.ndarray, spec: InputSpec, box: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """A BGR uint8 image (OpenCV order) -> [H, W, C] float32 pixels in the spec's order and size.

    ``box`` is (x0, y0, x1, y1) in image pixels; without it, the centre square.
    """
    import cv2

    h, w = image_bgr.shape[:2]
    if box is None:
        s = min(h, w)
        box = ((w - s) / 2, (h - s) / 2, (w + s) / 2, (h + s) / 2)
    x0, y0, x1, y1 = box
    # affine crop+resize: maps the box onto the input grid (pixel centres at i + 0.5)
    sx, sy = spec.width / (x1 - x0), spec.height / (y1 - y0)
    m = np.array([[sx, 0, -x0 * sx], [0, sy, -y0 * sy]], np.float32)
    out = cv2.warpAffine(image_bgr, m, (spec.width, spec.height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    if spec.color == "gray":
        out = cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)[..., None]
    elif spec.color == "rgb":
        out = out[..., ::-1]
    return np.ascontiguousarray(out, dtype=np.float32)


def _face_box(image_bgr: np.ndarray):
    """The crop box from the face front-end when it is available, else None."""
    try:
        from devicekit.face import crop as face_crop  # issue 6's front-end
    except ImportError:
        return None
    fn = getattr(face_crop, "detect_crop_box", None)
    if fn is None:
        return None
    try:
        return fn(image_bgr)
    except Exception:  # noqa: BLE001 - a detector failure falls back to the centre crop
        return None


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def list_videos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)


def video_frames(path: Path, count: int = FRAMES_PER_VIDEO):
    """Up to ``count`` BGR frames spread evenly over a video (nothing for an unreadable one)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if total <= 0:
            return []
        frames = []
        for idx in np.linspace(0, total - 1, num=min(count, total)).astype(int):
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(idx))
            ok, frame = cap.read()
            if ok and frame is not None:
                frames.append((f"{path.name}#{idx}", frame))
        return frames
    finally:
        cap.release()


def load_calibration(spec: InputSpec, folder: str | Path | None, count: int = 64, face_crop: bool = True, seed: int = 0) -> CalibrationSet:
    if folder is None:
        return synthetic_calibration(spec, count, seed)
    import cv2

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"calibration folder not found: {folder}")
    files, videos = list_images(folder), list_videos(folder)
    if not files and not videos:
        raise InputError(f"calibration folder {folder} has no images ({', '.join(sorted(IMAGE_SUFFIXES))}) or videos")
    pixels, used, skipped = [], [], []

    def add(label: str, img) -> None:
        if img is None or img.size == 0:
            skipped.append(label)
            return
        box = _face_box(img) if face_crop else None
        pixels.append(to_model_pixels(img, spec, box))
        used.append(label)

    for f in files:  # photos first, then frames spread over each video
        if len(pixels) >= count:
            break
        add(str(f), cv2.imread(str(f), cv2.IMREAD_COLOR))
    for v in videos:
        if len(pixels) >= count:
            break
        frames = video_frames(v, min(FRAMES_PER_VIDEO, count - len(pixels)))
        if not frames:
            skipped.append(v.name)
        for label, frame in frames:
            add(str(v.parent / label), frame)
    if not pixels:
        raise InputError(f"calibration folder {folder}: none of {len(files) + len(videos)} file(s) could be read (all corrupt?)")
    px = np.stack(pixels)
    return CalibrationSet(px, spec.normalize(px), used, skipped)


def synthetic_calibration(spec: InputSpec, count: int, seed: int = 0) -> CalibrationSet:
    """Smooth random images (low-frequency noise plus blobs): better than white noise, still a guess."""
    import cv2

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        small = rng.uniform(0, 255, (8, 8, spec.channels)).astype(np.float32)
        img = cv2.resize(small, (spec.width, spec.height), interpolation=cv2.INTER_CUBIC)
        img = img.reshape(spec.height, spec.width, spec.channels)
        img += rng.normal(0, 12, img.shape).astype(np.float32)
        out.append(np.clip(img, 0, 255))
    px = np.stack(out).astype(np.float32)
    return CalibrationSet(px, spec.normalize(px), synthetic=True)
