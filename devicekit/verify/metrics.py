"""Landmark accuracy metrics (pure numpy): NME, failure rate, AUC, CED, per landmark and per region.

Conventions (300-W / the face-alignment literature):

- NME of one face = mean over landmarks of ||pred - gt|| / d, where d is the
  inter-ocular distance (outer eye corners, iBUG 36 and 45) or the
  inter-pupil distance (centroids of the eye contours 36-41 and 42-47).
- failure rate at t = fraction of faces whose NME > t.
- AUC at t = area under the CED curve (fraction of faces with NME <= x) for
  x in [0, t], divided by t (so 1.0 is perfect). Integrated exactly: the CED
  is a step function.
- landmark-wise failure rate at t = fraction of (face, landmark) pairs whose
  point error / d > t.

All results are fractions (0.05 = 5%), never percent.
"""

from __future__ import annotations

import numpy as np

from ..landmarks import IBUG68, layout_for

THRESHOLDS = (0.08, 0.10)


def _check(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    if pred.ndim == 2:
        pred, gt = pred[None], gt[None]
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 2:
        raise ValueError(f"landmark arrays must both be [N, L, 2], got {pred.shape} and {gt.shape}")
    return pred, gt


def inter_ocular(gt: np.ndarray, layout: dict = IBUG68) -> np.ndarray:
    a, b = layout["outer_eye_corners"]
    return np.linalg.norm(gt[..., a, :] - gt[..., b, :], axis=-1)


def inter_pupil(gt: np.ndarray, layout: dict = IBUG68) -> np.ndarray:
    left = gt[..., layout["left_eye"], :].mean(-2)
    right = gt[..., layout["right_eye"], :].mean(-2)
    return np.linalg.norm(left - right, axis=-1)


def point_errors(pred, gt) -> np.ndarray:
    """[N, L] Euclidean error per point (same units as the inputs)."""
    pred, gt = _check(pred, gt)
    return np.linalg.norm(pred - gt, axis=-1)


def nme_per_face(pred, gt, norm: str = "inter_ocular", layout: dict = IBUG68) -> np.ndarray:
    pred, gt = _check(pred, gt)
    d = inter_ocular(gt, layout) if norm == "inter_ocular" else inter_pupil(gt, layout)
    if np.any(d <= 0):
        raise ValueError("a face has a zero normalising distance (eye points coincide)")
    return point_errors(pred, gt).mean(-1) / d


def failure_rate(nmes: np.ndarray, t: float) -> float:
    nmes = np.asarray(nmes, np.float64)
    return float((nmes > t).mean()) if nmes.size else float("nan")


def auc(nmes: np.ndarray, t: float) -> float:
    """Area under the CED on [0, t] / t, exactly (step function)."""
    nmes = np.sort(np.asarray(nmes, np.float64))
    n = nmes.size
    if n == 0:
        return float("nan")
    # CED(x) = (#nme <= x)/n; integral over [0, t] = sum over faces of (t - nme_i)+ / n
    return float(np.clip(t - nmes, 0, None).sum() / (n * t))


def ced(nmes: np.ndarray, t_max: float = 0.10, steps: int = 101) -> tuple[np.ndarray, np.ndarray]:
    x = np.linspace(0, t_max, steps)
    nmes = np.asarray(nmes, np.float64)
    y = (nmes[None, :] <= x[:, None]).mean(1) if nmes.size else np.zeros_like(x)
    return x, y


def summary(pred, gt, layout: dict | None = None) -> dict:
    """All accuracy numbers for one model on N faces (fractions)."""
    pred, gt = _check(pred, gt)
    layout = layout or layout_for(gt.shape[1])
    if "outer_eye_corners" not in layout:
        raise ValueError(f"layout {layout['name']} has no eye points: NME needs the iBUG 68 layout")
    io = nme_per_face(pred, gt, "inter_ocular", layout)
    ip = nme_per_face(pred, gt, "inter_pupil", layout)
    d_io = inter_ocular(gt, layout)
    rel = point_errors(pred, gt) / d_io[:, None]  # [N, L] error / inter-ocular
    out = {
        "images": int(len(io)),
        "nme_inter_ocular": float(io.mean()),
        "nme_inter_pupil": float(ip.mean()),
    }
    for t in THRESHOLDS:
        out[f"fr_{t:.2f}"] = failure_rate(io, t)
    for t in THRESHOLDS:
        out[f"auc_{t:.2f}"] = auc(io, t)
    out["per_face_nme_inter_ocular"] = [float(v) for v in io]
    out["per_landmark"] = {
        "nme_inter_ocular": [float(v) for v in rel.mean(0)],
        **{f"fr_{t:.2f}": [float(v) for v in (rel > t).mean(0)] for t in THRESHOLDS},
    }
    out["landmark_fr"] = {f"{t:.2f}": float((rel > t).mean()) for t in THRESHOLDS}
    out["per_region"] = {
        name: {"nme_inter_ocular": float(rel[:, idx].mean()), "fr_0.10": float((rel[:, idx] > 0.10).mean())}
        for name, idx in layout["regions"].items()
    }
    return out


SCALARS = ("nme_inter_ocular", "nme_inter_pupil", "fr_0.08", "fr_0.10", "auc_0.08", "auc_0.10")


def delta(ref: dict, conv: dict) -> dict:
    """converted - reference for the scalar metrics."""
    out = {k: float(conv[k] - ref[k]) for k in SCALARS if k in ref and k in conv}
    out["images"] = int(min(ref.get("images", 0), conv.get("images", 0)))
    return out
