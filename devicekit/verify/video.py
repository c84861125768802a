"""Temporal stability on a real video: landmark jitter raw and through the 1-euro filter.

Tracking as the apps do it: the Haar detector finds the face on the first
frame (and whenever the track is lost); after that each frame's crop comes
from the previous frame's reference landmarks with the same crop policy
(``box_from_landmarks``). Both models run on the same crops.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import InputSpec
from ..errors import InputError
from ..face.crop import CROP_POLICY, box_from_detection, box_from_landmarks, to_image
from ..face.one_euro import DEFAULT_PARAMS, filter_sequence, jitter
from .core import model_pixels
from .metrics import inter_ocular


def iter_frames(path: str | Path, every: int = 1):
    """(index, BGR frame) for every ``every``-th decoded frame of a video, in order."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        i = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            if i % every == 0:
                yield i, frame
            i += 1
    finally:
        cap.release()


def read_frames(path: str | Path, max_frames: int = 300) -> tuple[list[np.ndarray], float]:
    import itertools

    import cv2

    path = Path(path)
    if not path.is_file():
        raise InputError(f"video not found: {path}")
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    cap.release()
    frames = [f for _, f in itertools.islice(iter_frames(path), max_frames)]
    if not frames:
        raise InputError(f"{path.name}: no frames could be decoded (not a video, or a codec OpenCV lacks)")
    return frames, float(fps)


def track(runners: dict, frames: list[np.ndarray], spec: InputSpec, policy: dict = CROP_POLICY) -> dict:
    """{name: [T, L, 2] image-pixel tracks} for the frames where a face was tracked (same frames for all)."""
    from ..face.detect import detect_faces

    first = next(iter(runners))
    tracks: dict[str, list] = {k: [] for k in runners}
    kept, box = [], None
    for i, frame in enumerate(frames):
        if box is None:
            dets = detect_faces(frame)
            if not dets:
                continue
            box = box_from_detection(dets[0], policy)
        x = spec.normalize(model_pixels(frame, box, spec)[None])
        pts = {k: to_image(r(x), box, spec.width) for k, r in runners.items()}
        ref = pts[first]
        if inter_ocular(ref) < 0.1 * box.size:  # degenerate: the face is gone; detect again next frame
            box = None
            continue
        for k in runners:
            tracks[k].append(pts[k])
        kept.append(i)
        box = box_from_landmarks(ref, policy)
    return {"frames": kept, **{k: np.stack(v) if v else np.zeros((0, 0, 2)) for k, v in tracks.items()}}


def stability(runners: dict, video: str | Path, spec: InputSpec, params: dict | None = None) -> dict:
    frames, fps = read_frames(video)
    t = track(runners, frames, spec)
    if len(t["frames"]) < 3:
        raise InputError(f"{Path(video).name}: a face was tracked in only {len(t['frames'])} frame(s); need 3")
    params = dict(params or DEFAULT_PARAMS)
    out = {"video": str(video), "fps": fps, "frames": len(frames), "tracked": len(t["frames"]),
           "one_euro": params, "units": "image pixels; *_norm divided by the inter-ocular distance"}
    for name in runners:
        tr = t[name]
        io = inter_ocular(tr)
        filt = filter_sequence(tr, fps, params)
        out[name] = {"raw": jitter(tr, io), "filtered": jitter(filt, io)}
    return out
