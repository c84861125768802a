"""Calibration images: a folder of real photos (and video frames) -> model inputs, plus held-out ones.

Each image is decoded, face-cropped with the crop every other stage uses
(devicekit.face.crop: the detector box and crop policy, or the centre
square when no face is found), converted to the spec's colour order and
normalised by the spec. A video in which the detector finds a face gives
only its frames with a face: the apps run the model on detected faces, so a
frame before the person walks in (a title card, an empty room) is not an
input the model will see, and judging int8 on it measures noise. Such a video
is sampled ``NO_FACE_OVERSAMPLE`` times closer and its frames with a face are
spread over its share; the others are counted as ``no_face``. A video with no
face at all (a model that is not about faces) keeps its centre crops. A share
of the images is held out: the int8 search never sees them, and convert's gate
judges every artifact on them as well.

A file that does not decode completely (a truncated JPEG or PNG decodes to a
half-grey picture without an error) is skipped, never calibrated on; fewer
than ``MIN_IMAGES`` good images is an error. With no folder, a synthetic
set is made and the caller must warn loudly: int8 ranges calibrated on it
are guesses.
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
NO_FACE_OVERSAMPLE = 2  # a video with frames without a face is sampled this much closer, for its frames with one
MIN_IMAGES = 8  # good calibration images below which int8 conversion refuses (--calib-min)
HOLDOUT = 16  # images held out of calibration and of the int8 search, for the gate
VALIDATION = 16  # images held out of calibration that the int8 search judges its choices on


@dataclass
class CalibrationSet:
    pixels: np.ndarray  # [N, H, W, C] float32 0-255 in the spec's colour order
    inputs: np.ndarray  # [N, C, H, W] float32, normalised: the model input
    files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    synthetic: bool = False
    holdout: np.ndarray | None = None  # [M, C, H, W] normalised inputs neither calibration nor the search saw
    holdout_files: list[str] = field(default_factory=list)
    validation: np.ndarray | None = None  # inputs calibration never saw; the int8 search judges on them
    validation_files: list[str] = field(default_factory=list)
    no_face: list[str] = field(default_factory=list)  # frames of face videos with no face in them, left out

    def to_json(self) -> dict:
        return {
            "count": int(len(self.inputs)),
            "synthetic": self.synthetic,
            "skipped": len(self.skipped),
            "skipped_files": self.skipped[:20],
            "source": "synthetic" if self.synthetic else (str(Path(self.files[0]).parent) if self.files else None),
            "video_frames": sum("#" in f for f in self.files),
            "no_face_frames": len(self.no_face),
            "holdout": 0 if self.holdout is None else int(len(self.holdout)),
            "validation": 0 if self.validation is None else int(len(self.validation)),
        }


def to_model_pixels(image_bgr: np.ndarray, spec: InputSpec, box=None) -> np.ndarray:
    """A BGR uint8 image (OpenCV order) -> [H, W, C] float32 pixels in the spec's order and size.

    ``box`` is a ``devicekit.face.crop.CropBox``; without it, the centre square.
    """
    from devicekit.face.crop import centre_box, model_pixels

    return model_pixels(image_bgr, box if box is not None else centre_box(image_bgr), spec)


def _face_box(image_bgr: np.ndarray):
    """The crop box of the largest face (the detector and crop policy every stage uses), else None."""
    from devicekit.face.crop import detect_face_box

    return detect_face_box(image_bgr)


def decode_complete(path: Path) -> np.ndarray | None:
    """The BGR image, or None when it is unreadable or its data ends early (truncated JPEG / PNG)."""
    import cv2

    try:
        data = path.read_bytes()
    except OSError:
        return None
    tail = data.rstrip(b"\0\r\n\t ")
    suffix = path.suffix.lower()
    if suffix in (".jpg", ".jpeg") and not tail.endswith(b"\xff\xd9"):
        return None  # no end-of-image marker: OpenCV would fill the missing rows with grey
    if suffix == ".png" and b"IEND" not in data[-16:]:
        return None
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return img if img is not None and img.size else None


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


def video_crops(path: Path, n: int, face_crop: bool = True):
    """Up to ``n`` (label, BGR frame, face box or None) spread over a video, and the labels of frames left out.

    In a video where the detector finds a face in some frames but not in others, only frames with a face are
    kept: it is sampled ``NO_FACE_OVERSAMPLE`` times closer and those spread over the ``n``.
    """
    frames = video_frames(path, n)
    boxes = [_face_box(frame) if face_crop else None for _, frame in frames]
    if not (any(b is None for b in boxes) and any(b is not None for b in boxes)):
        return [(label, frame, box) for (label, frame), box in zip(frames, boxes)], []
    frames = video_frames(path, NO_FACE_OVERSAMPLE * n)
    boxes = [_face_box(frame) for _, frame in frames]
    kept = [i for i, b in enumerate(boxes) if b is not None]
    kept = [kept[j] for j in np.unique(np.linspace(0, len(kept) - 1, num=min(n, len(kept))).astype(int))]
    return [(*frames[i], boxes[i]) for i in kept], [label for (label, _), b in zip(frames, boxes) if b is None]


def load_calibration(
    spec: InputSpec,
    folder: str | Path | None,
    count: int = 64,
    face_crop: bool = True,
    seed: int = 0,
    holdout: int = HOLDOUT,
    min_images: int = MIN_IMAGES,
    validation: int = VALIDATION,
) -> CalibrationSet:
    """``count`` calibration inputs, and up to ``validation`` + ``holdout`` more that calibration never sees.

    Without a folder all three sets are synthetic (different seeds).
    """
    if folder is None:
        cal = synthetic_calibration(spec, count, seed)
        cal.validation = synthetic_calibration(spec, validation, seed + 1).inputs if validation else None
        cal.holdout = synthetic_calibration(spec, holdout, seed + 2).inputs if holdout else None
        return cal
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"calibration folder not found: {folder}")
    files, videos = list_images(folder), list_videos(folder)
    if not files and not videos:
        raise InputError(f"calibration folder {folder} has no images ({', '.join(sorted(IMAGE_SUFFIXES))}) or videos")
    images: list[tuple[str, np.ndarray]] = []
    skipped: list[str] = []
    want = count + validation + holdout

    no_face: list[str] = []
    for f in files:  # photos first, then frames spread over each video
        if len(images) >= want:
            break
        img = decode_complete(f)
        if img is None or img.size == 0:
            skipped.append(str(f))
            continue
        images.append((str(f), to_model_pixels(img, spec, _face_box(img) if face_crop else None)))
    for v in videos:
        if len(images) >= want:
            break
        frames, empty = video_crops(v, min(FRAMES_PER_VIDEO, want - len(images)), face_crop)
        if not frames and not empty:
            skipped.append(v.name)
        no_face += empty
        images += [(str(v.parent / label), to_model_pixels(frame, spec, box)) for label, frame, box in frames]
    if not images:
        raise InputError(f"calibration folder {folder}: none of {len(files) + len(videos)} file(s) could be read (all corrupt?)")
    if len(images) < min_images:
        raise InputError(
            f"calibration folder {folder}: only {len(images)} good image(s) (need at least {min_images}; {len(skipped)} unreadable or truncated)",
            hint="add real photos to the folder, or lower the minimum with --calib-min N",
        )
    held = split_out(len(images), count, validation, holdout, min_images)
    sets: dict[str, list[tuple[str, np.ndarray]]] = {"calibration": [], "validation": [], "holdout": []}
    for i, item in enumerate(images):
        sets[held.get(i, "calibration")].append(item)
    cal = sets["calibration"][:count]

    def normalised(key):
        return spec.normalize(np.stack([p for _, p in sets[key]])) if sets[key] else None

    px = np.stack([p for _, p in cal])
    return CalibrationSet(
        px,
        spec.normalize(px),
        [f for f, _ in cal],
        skipped,
        holdout=normalised("holdout"),
        holdout_files=[f for f, _ in sets["holdout"]],
        validation=normalised("validation"),
        validation_files=[f for f, _ in sets["validation"]],
        no_face=no_face,
    )


def split_out(total: int, count: int, validation: int, holdout: int, min_images: int) -> dict[int, str]:
    """Which of ``total`` images (by index) leave calibration: index -> "validation" | "holdout".

    Up to ``validation`` + ``holdout`` images leave: what calibration's ``count`` does not need, but never fewer
    than a quarter of the images (nor leaving fewer than ``min_images``). A folder of 71 faces with count 64 gives
    54 / 9 / 8, not 64 / 4 / 3: calibration hardly changes between 54 and 64 faces, a gate on 3 images judges little.
    The held-out ones are spread evenly over the list (photos and every video), alternating between the two sets.
    """
    out = min(validation + holdout, max(total - count, total // 4), max(0, total - min_images))
    if out <= 0:
        return {}
    picks = [int((i + 1) * total / (out + 1)) for i in range(out)]
    res, n = {}, {"validation": 0, "holdout": 0}
    for k, idx in enumerate(picks):
        first, second = ("validation", "holdout") if k % 2 == 0 else ("holdout", "validation")
        key = first if n[first] < (validation if first == "validation" else holdout) else second
        n[key] += 1
        res[idx] = key
    return res


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
