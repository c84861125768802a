"""Out-of-plane pose re-rendering of a training face ("face profiling", as 300W-LP / 3DDFA, Zhu et al. 2016).

From MediaPipe's 3D face mesh of a face (scripts/face_teacher.py, ``Teacher.label(..., depth=True)``: 468 x, y, z in image
pixels, z < 0 towards the camera), ``pose_view`` renders the same image as if the head were turned by ``yaw``
(and tilted by ``pitch``) degrees:

1. rotate the mesh about the head centre (the mesh's bbox centre in x and y, its mean depth) and project it
   orthographically;
2. keep the vertices that still face the camera after the rotation (normals from a Delaunay triangulation of
   the original, frontal-ish view) and are not hidden behind nearer triangles (the nose at large yaw);
3. warp the image with a thin-plate spline fitted from those vertices (rotated -> original position, a backward
   map) plus fixed anchors on the crop border (so the background stays put), evaluated on a coarse grid,
   upsampled bilinearly and applied with cv2.remap.

Labels: ``rotate_labels`` rotates any 2D points of the face given a depth for each (``label_depth``: the depth
of the mesh interpolated at the point), i.e. the geometric labels; scripts/train_heatmap2s.py measures them
against the teachers re-run on the rendered image and says which it trains on.

Pure numpy + OpenCV (+ scipy's Delaunay), about 50 ms per 256 x 256 view on this machine (one core).
"""

from __future__ import annotations

import math

import numpy as np

GRID = 32  # the spline is evaluated on a GRID x GRID grid, then upsampled
ANCHORS = 8  # fixed anchors per border side
SMOOTH = 1e-4  # thin-plate-spline regularisation (normalised coordinates)


def rotation(yaw_deg: float, pitch_deg: float = 0.0) -> np.ndarray:
    """3x3 rotation in image coordinates (x right, y down, z away from the camera): yaw about the vertical axis, then pitch."""
    a, b = math.radians(yaw_deg), math.radians(pitch_deg)
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    return rx @ ry


def head_centre(mesh: np.ndarray) -> np.ndarray:
    lo, hi = mesh[:, :2].min(0), mesh[:, :2].max(0)
    return np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, mesh[:, 2].mean()])


def rotate(points3: np.ndarray, r: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Rotate [N, 3] points about ``centre``; the orthographic projection is the first two columns."""
    return (points3 - centre) @ r.T + centre


def triangles(mesh: np.ndarray) -> np.ndarray:
    """A triangulation of the mesh's surface: Delaunay of its (frontal-ish) 2D projection, wound towards the camera."""
    from scipy.spatial import Delaunay

    tri = Delaunay(mesh[:, :2]).simplices
    a, b, c = (mesh[tri[:, k], :2] for k in range(3))
    cross = (b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0]
    tri[cross > 0] = tri[cross > 0][:, [0, 2, 1]]  # normal z < 0 (towards the camera) for every triangle
    return tri


def _normals(p: np.ndarray, tri: np.ndarray) -> np.ndarray:
    return np.cross(p[tri[:, 1]] - p[tri[:, 0]], p[tri[:, 2]] - p[tri[:, 0]])


def visible(rot: np.ndarray, tri: np.ndarray, tol: float = 1.0) -> np.ndarray:
    """[N] bool: vertices of the rotated mesh that face the camera and lie in front of every triangle covering them."""
    n = _normals(rot, tri)
    vn = np.zeros_like(rot)
    for k in range(3):
        np.add.at(vn, tri[:, k], n)
    facing = vn[:, 2] < -0.05 * np.linalg.norm(vn, axis=1)
    # self-occlusion: a front-facing triangle (not containing the vertex) covers it in 2D and is nearer there
    front = tri[n[:, 2] < 0]
    a, b, c = (rot[front[:, k]] for k in range(3))
    v0, v1 = (b - a)[:, :2], (c - a)[:, :2]
    det = v0[:, 0] * v1[:, 1] - v0[:, 1] * v1[:, 0]
    ok = np.abs(det) > 1e-9
    front, a, v0, v1, det, b, c = front[ok], a[ok], v0[ok], v1[ok], det[ok], b[ok], c[ok]
    q = rot[:, None, :2] - a[None, :, :2]  # [N, T, 2]
    u = (q[..., 0] * v1[:, 1] - q[..., 1] * v1[:, 0]) / det
    w = (v0[:, 0] * q[..., 1] - v0[:, 1] * q[..., 0]) / det
    inside = (u > 0) & (w > 0) & (u + w < 1)
    z = a[None, :, 2] + u * (b - a)[None, :, 2] + w * (c - a)[None, :, 2]
    own = (front[None, :, :] == np.arange(len(rot))[:, None, None]).any(-1)
    hidden = (inside & ~own & (z < rot[:, None, 2] - tol)).any(1)
    return facing & ~hidden


def _tps_kernel(r2: np.ndarray) -> np.ndarray:
    return 0.5 * r2 * np.log(np.maximum(r2, 1e-12))


def tps(src: np.ndarray, dst: np.ndarray, smooth: float = SMOOTH):
    """A thin-plate spline f with f(src[i]) ~ dst[i] ([N, 2] each); returns f as a function of [M, 2] points."""
    n = len(src)
    k = _tps_kernel(((src[:, None] - src[None]) ** 2).sum(-1)) + smooth * np.eye(n)
    p = np.hstack([np.ones((n, 1)), src])
    a = np.zeros((n + 3, n + 3))
    a[:n, :n], a[:n, n:], a[n:, :n] = k, p, p.T
    coef = np.linalg.solve(a, np.vstack([dst, np.zeros((3, 2))]))

    def f(x):
        kx = _tps_kernel(((x[:, None] - src[None]) ** 2).sum(-1))
        return kx @ coef[:n] + np.hstack([np.ones((len(x), 1)), x]) @ coef[n:]

    return f


def warp_maps(dst: np.ndarray, src: np.ndarray, size: int, grid: int = GRID) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap maps for a size x size image: output pixel -> source pixel, from control points dst -> src
    (plus ANCHORS fixed points per border side), by a thin-plate spline on a grid x grid grid, upsampled."""
    import cv2

    t = np.linspace(0, size - 1, ANCHORS + 1)[:-1]
    e = np.full_like(t, size - 1)
    z = np.zeros_like(t)
    border = np.concatenate([np.stack([t, z], 1), np.stack([e, t], 1), np.stack([size - 1 - t, e], 1), np.stack([z, size - 1 - t], 1)])
    s = 1.0 / size  # normalised coordinates for conditioning
    f = tps(np.vstack([dst, border]) * s, np.vstack([src, border]) * s)
    cell = size // grid  # size must be a multiple of grid
    # grid nodes at cv2.resize's pixel centres, one extra cell on each side so that the upsampled map is exact at the border
    g = (np.arange(grid + 2) - 0.5) * cell - 0.5
    gx, gy = np.meshgrid(g, g)
    m = (f(np.stack([gx.ravel(), gy.ravel()], 1) * s) / s).astype(np.float32).reshape(grid + 2, grid + 2, 2)
    m = cv2.resize(m, ((grid + 2) * cell,) * 2, interpolation=cv2.INTER_LINEAR)[cell : cell + size, cell : cell + size]
    return np.ascontiguousarray(m[..., 0]), np.ascontiguousarray(m[..., 1])


def label_depth(points: np.ndarray, mesh: np.ndarray, k: int = 3) -> np.ndarray:
    """[N] depth at 2D points, interpolated (inverse distance) from the k nearest mesh vertices in the image plane."""
    d = np.linalg.norm(points[:, None, :2] - mesh[None, :, :2], axis=-1)
    idx = np.argsort(d, 1)[:, :k]
    w = 1.0 / (np.take_along_axis(d, idx, 1) + 1e-3)
    return (mesh[idx, 2] * w).sum(1) / w.sum(1)


def rotate_labels(points: np.ndarray, mesh: np.ndarray, yaw: float, pitch: float = 0.0) -> np.ndarray:
    """2D points of the face (e.g. its 68 labels) rotated with the head and projected: the geometric labels."""
    p3 = np.column_stack([points[:, :2], label_depth(points, mesh)])
    return rotate(p3, rotation(yaw, pitch), head_centre(mesh))[:, :2].astype(np.float32)


def pose_view(img: np.ndarray, mesh: np.ndarray, yaw: float, pitch: float = 0.0, tri: np.ndarray | None = None) -> np.ndarray:
    """``img`` (square, H = W) with the head rotated by yaw/pitch degrees (see the module docstring)."""
    import cv2

    tri = triangles(mesh) if tri is None else tri
    rot = rotate(mesh, rotation(yaw, pitch), head_centre(mesh))
    vis = visible(rot, tri)
    size = img.shape[0]
    inside = vis & (rot[:, :2] > 0).all(1) & (rot[:, :2] < size - 1).all(1)
    mx, my = warp_maps(rot[inside, :2][::2], mesh[inside, :2][::2], size)
    return cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
