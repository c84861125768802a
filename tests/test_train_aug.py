"""The training script's augmentations on a synthetic 68-point face: background replacement (--bg-aug) and appearance transfer (--mix-aug)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))


def _face(cx: float = 64.0, cy: float = 70.0, r: float = 30.0) -> np.ndarray:
    """68 iBUG-ordered points of a schematic frontal face in a 128 x 128 crop: the jaw on the lower half of a
    circle, brows above the eyes, the nose down the middle, the mouth below it."""
    jaw = [(cx - r * math.cos(t), cy + r * math.sin(t)) for t in np.linspace(0, math.pi, 17)]
    brows = [(cx + dx, cy - 0.55 * r) for dx in np.linspace(-0.8 * r, 0.8 * r, 10)]
    nose = [(cx, cy - 0.4 * r + k * 0.12 * r) for k in range(4)] + [(cx + dx, cy + 0.15 * r) for dx in np.linspace(-0.2 * r, 0.2 * r, 5)]
    eyes = [
        (cx + s * 0.4 * r + 0.12 * r * math.cos(t), cy - 0.3 * r + 0.05 * r * math.sin(t))
        for s in (-1, 1)
        for t in np.linspace(0, 2 * math.pi, 6, endpoint=False)
    ]
    mouth = [(cx + 0.35 * r * math.cos(t), cy + 0.5 * r + 0.1 * r * math.sin(t)) for t in np.linspace(0, 2 * math.pi, 20, endpoint=False)]
    pts = np.array(jaw + brows + nose + eyes + mouth, np.float32)
    assert pts.shape == (68, 2)
    return pts


def test_face_mask_covers_every_point_and_the_forehead_but_not_the_corners():
    from train_heatmap2s import IN, face_mask

    pts = _face()
    m = face_mask(pts, IN)[..., 0]
    assert m.shape == (IN, IN) and 0.0 <= m.min() and m.max() <= 1.0
    at = m[np.round(pts[:, 1]).astype(int).clip(0, IN - 1), np.round(pts[:, 0]).astype(int).clip(0, IN - 1)]
    assert at.min() > 0.5, at.min()
    brow_y, chin_y = pts[17:27, 1].mean(), pts[8, 1]
    forehead = round(brow_y - 0.3 * (chin_y - brow_y))
    assert m[forehead, 64] > 0.9  # the raised brows: the forehead stays the face's
    for y, x in ((2, 2), (2, IN - 3), (IN - 3, 2), (IN - 3, IN - 3)):
        assert m[y, x] == 0.0


def test_background_is_a_corner_of_the_other_crop_not_its_face():
    from train_heatmap2s import IN, SRC, background

    other = np.zeros((SRC, SRC, 3), np.uint8)
    other[64:192, 64:192] = 255  # "the face" in the middle of the stored crop; the corners are dark
    rng = np.random.default_rng(0)
    for _ in range(20):
        b = background(rng, other)
        assert b.shape == (IN, IN, 3) and b.dtype == np.float32
        assert b.mean() < 255 * 0.75  # never the face alone: at least a quarter of every patch is corner


def test_augment_replaces_the_background_and_keeps_the_face():
    from train_heatmap2s import IN, SRC, augment

    img = np.full((SRC, SRC, 3), 90, np.uint8)  # a flat grey "photo": face and background alike
    pts = _face(128.0, 136.0, 50.0)  # in the stored SRC crop
    other = np.full((SRC, SRC, 3), 250, np.uint8)  # a bright "other image"

    def brighter_corners(bg) -> int:
        rng, n = np.random.default_rng(3), 0
        for _ in range(8):
            x, p = augment(rng, img, pts, True, False, bg)
            assert x.shape == (3, IN, IN) and np.isfinite(x).all() and p.shape == (68, 2)
            c = np.round(p[30]).astype(int).clip(4, IN - 5)  # the nose tip
            face = x[:, c[1] - 4 : c[1] + 4, c[0] - 4 : c[0] + 4].mean()
            corners = np.mean([x[:, :8, :8].mean(), x[:, :8, -8:].mean(), x[:, -8:, :8].mean(), x[:, -8:, -8:].mean()])
            n += int(corners > face + 0.2)
        return n

    # colour jitter keeps the order of grey levels, so with the bright background the corners are brighter than the nose
    assert brighter_corners(other) >= 6
    assert brighter_corners(None) <= 2


def test_texture_from_puts_the_other_faces_features_on_these_points_and_keeps_the_rest():
    import cv2
    from train_heatmap2s import SRC, texture_from

    pts = _face(cx=128, cy=140, r=60)  # this face, in a SRC x SRC source crop
    other_pts = _face(cx=120, cy=130, r=48) + np.float32([4, 0]) * np.linspace(-1, 1, 68)[:, None]  # another shape
    img = np.full((SRC, SRC, 3), 90, np.uint8)
    other = np.full((SRC, SRC, 3), 160, np.uint8)
    marks = [36, 45, 30, 48, 54]  # eye corners, nose tip, mouth corners: a colour each at the other face's points
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]
    for k, c in zip(marks, colours):
        cv2.circle(other, tuple(int(round(v)) for v in other_pts[k]), 5, c, -1)
    out = texture_from(img, pts, other, other_pts)
    assert out.shape == img.shape and out.dtype == np.uint8
    for k, c in zip(marks, colours):
        x, y = (int(round(v)) for v in pts[k])
        got = out[y, x].astype(int)
        # the other face's mark, at this face's point (its colour moved halfway to this face's mean: 90 vs 160)
        want = np.clip(np.array(c) - 0.5 * (160 - 90), 0, 255)
        assert np.abs(got - want).max() <= 40, (k, got, want)
    assert (out[:8, :8] == 90).all() and (out[-8:, -8:] == 90).all()  # outside the face: this image, untouched


def test_draw_weights_photo_share_and_identity_balance():
    from train_heatmap2s import PHOTO_SHARE, draw_weights

    files = np.array(["a.jpg", "b.jpg", "b.jpg", "v1.mp4", "v1.mp4", "v1.mp4", "v1.mp4", "v2.mov"])
    old = draw_weights(len(files), 3)
    assert math.isclose(old[:3].sum(), PHOTO_SHARE) and math.isclose(old.sum(), 1.0)
    assert np.allclose(old[3:], old[3])  # video frames evenly, whichever video they come from
    new = draw_weights(len(files), 3, files)
    assert math.isclose(new.sum(), 1.0)
    # three photo faces (b.jpg holds two people) and two videos: five units of 1/5, a video's frames share one
    assert np.allclose(new[:3], 0.2) and math.isclose(new[3:7].sum(), 0.2) and math.isclose(new[7], 0.2)


def test_photo_people_are_people_and_smaller_sets_are_inside_larger_ones():
    import pytest
    from train_heatmap2s import keep_people, photo_people

    files = np.array(["multi_face.jpg", "multi_face.jpg", "facerec-obama.jpg", "facerec-obama3.jpg", "a.jpg", "b.jpg", "b.jpg"])
    keys = photo_people(files)
    # a group photo: one person per face; Obama's two photos: one man; two faces of one file otherwise: one person
    assert list(keys) == ["multi_face.jpg#1", "multi_face.jpg#2", "facerec-obama.jpg", "facerec-obama.jpg", "a.jpg", "b.jpg", "b.jpg"]
    keep = np.array([True] * 6 + [False])  # b.jpg's second face already dropped (teachers disagree)
    sets = [set(keys[keep_people(keys, keep, k)]) for k in range(1, 6)]
    assert [len(x) for x in sets] == [1, 2, 3, 4, 5] and all(a < b for a, b in zip(sets, sets[1:]))
    assert not keep_people(keys, keep, 5)[6]  # a dropped face stays dropped
    assert keep_people(keys, keep, 5)[2:4].all()  # a person comes with all their faces
    with pytest.raises(SystemExit, match="between 1 and 5"):
        keep_people(keys, keep, 6)


def test_unseen_val_refuses_a_label_cache_without_source_files(tmp_path):
    import subprocess

    from train_heatmap2s import SOURCE_FILES, VAL_PERSON, VAL_VIDEO

    assert set(VAL_PERSON) <= set(SOURCE_FILES) and VAL_VIDEO not in VAL_PERSON
    pts = np.tile(_face()[None], (2, 1, 1))
    img = np.zeros((2, 8, 8, 3), np.uint8)
    cache = tmp_path / "old-labels.npz"  # a label cache as built before v12: no train_file
    np.savez(cache, train_img=img, train_mediapipe=pts, train_faceapi=pts, val_img=img, val_mediapipe=pts, val_faceapi=pts, photo_faces=np.array(1))
    script = Path(__file__).resolve().parent.parent / "scripts" / "train_heatmap2s.py"
    r = subprocess.run(
        [sys.executable, str(script), "--labels", str(cache), "--out", str(tmp_path / "a.pt"), "--unseen-val"], capture_output=True, text=True
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("train_heatmap2s: the label cache predates --unseen-val")
    assert not (tmp_path / "a.pt").exists()
