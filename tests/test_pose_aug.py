"""The out-of-plane pose re-rendering of training faces (scripts/pose_aug.py) on a synthetic hemisphere "face"."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

R, C = 60.0, 128.0  # hemisphere radius and image-plane centre, in a 256 x 256 crop


def _hemisphere() -> np.ndarray:
    """[N, 3] points of the camera-facing half of a sphere (z < 0 towards the camera), as MediaPipe's mesh is."""
    g = np.linspace(-0.95 * R, 0.95 * R, 23)
    x, y = np.meshgrid(g, g)
    x, y = x.ravel(), y.ravel()
    k = x**2 + y**2 < (0.95 * R) ** 2
    x, y = x[k], y[k]
    return np.column_stack([x + C, y + C, -np.sqrt(R**2 - x**2 - y**2)])


def test_yaw_zero_is_the_identity_warp():
    from pose_aug import pose_view

    img = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    assert np.array_equal(pose_view(img, _hemisphere(), 0.0, 0.0), img)


def test_rotated_labels_match_the_analytic_projection():
    from pose_aug import head_centre, rotate_labels

    mesh = _hemisphere()
    c = head_centre(mesh)
    pts = mesh[[0, len(mesh) // 2, len(mesh) - 5], :2]  # vertices: their interpolated depth is their own
    z = mesh[[0, len(mesh) // 2, len(mesh) - 5], 2]
    for yaw, pitch in [(30.0, 0.0), (-40.0, 0.0), (0.0, 10.0)]:
        a, b = math.radians(yaw), math.radians(pitch)
        x1 = c[0] + (pts[:, 0] - c[0]) * math.cos(a) + (z - c[2]) * math.sin(a)
        z1 = c[2] - (pts[:, 0] - c[0]) * math.sin(a) + (z - c[2]) * math.cos(a)
        y1 = c[1] + (pts[:, 1] - c[1]) * math.cos(b) - (z1 - c[2]) * math.sin(b)
        got = rotate_labels(pts, mesh, yaw, pitch)
        np.testing.assert_allclose(got, np.column_stack([x1, y1]), atol=0.1)


def test_far_side_is_hidden_and_the_image_moves_with_the_mesh():
    import cv2
    from pose_aug import head_centre, pose_view, rotate, rotation, triangles, visible

    mesh = _hemisphere()
    rot = rotate(mesh, rotation(50.0), head_centre(mesh))
    vis = visible(rot, triangles(mesh))
    # turned by +50 degrees, the sphere's -x rim faces away from the camera, its +x side stays in view
    assert not vis[mesh[:, 0] < C - 0.8 * R].any() and vis[(mesh[:, 0] > C + 0.3 * R) & (abs(mesh[:, 1] - C) < 20)].all()
    # a dot on the sphere's apex lands where the apex projects after a yaw of 30 degrees
    img = np.zeros((256, 256, 3), np.uint8)
    cv2.circle(img, (int(C), int(C)), 4, (255, 255, 255), -1)
    out = pose_view(img, mesh, 30.0)[..., 0].astype(np.float64)
    ys, xs = np.nonzero(out > 128)
    c = head_centre(mesh)
    expect_x = c[0] + (-R - c[2]) * math.sin(math.radians(30.0))
    assert abs(xs.mean() - expect_x) < 1.5 and abs(ys.mean() - C) < 1.5
    assert abs(expect_x - C) > 5  # the check is not vacuous: the apex moved
