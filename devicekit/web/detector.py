"""The web app's face detector in Python: BlazeFace short-range, the same anchors and decoding as
mobile_templates/web/js/detector.js, run with ai_edge_litert (tests compare the browser with it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

STRIDES = (8, 16, 16, 16)


def anchors(size: int = 128) -> np.ndarray:
    out, layer = [], 0
    while layer < len(STRIDES):
        n, l2 = 0, layer
        while l2 < len(STRIDES) and STRIDES[l2] == STRIDES[layer]:
            n += 2
            l2 += 1
        g = -(-size // STRIDES[layer])
        for y in range(g):
            for x in range(g):
                out += [((x + 0.5) / g, (y + 0.5) / g)] * n
        layer = l2
    return np.asarray(out, np.float64)


def detector_input(rgb: np.ndarray, size: int = 128):
    """Letterbox an RGB uint8 frame into size x size (bilinear, black padding), values in [-1, 1]."""
    h, w = rgb.shape[:2]
    s = max(w, h) / size
    ox, oy = (size * s - w) / 2, (size * s - h) / 2
    fx = (np.arange(size) + 0.5) * s - ox - 0.5
    fy = (np.arange(size) + 0.5) * s - oy - 0.5
    x0, y0 = np.floor(fx).astype(int), np.floor(fy).astype(int)
    ax, ay = (fx - x0)[None, :, None], (fy - y0)[:, None, None]
    pad = np.zeros((h + 2, w + 2, 3), np.float64)
    pad[1:-1, 1:-1] = rgb[..., :3]

    def px(yy, xx):
        yy, xx = np.clip(yy + 1, 0, h + 1), np.clip(xx + 1, 0, w + 1)
        return pad[yy[:, None], xx[None, :]]

    val = (1 - ay) * ((1 - ax) * px(y0, x0) + ax * px(y0, x0 + 1)) + ay * ((1 - ax) * px(y0 + 1, x0) + ax * px(y0 + 1, x0 + 1))
    return (val / 127.5 - 1).astype(np.float32)[None], (s, ox, oy)


def decode_best(reg: np.ndarray, scores: np.ndarray, anc: np.ndarray, lb, size: int = 128, min_score: float = 0.5):
    """-> (x, y, w, h, score) in frame pixels of the best face (weighted NMS), or None."""
    s = 1 / (1 + np.exp(-np.clip(scores.astype(np.float64).ravel(), -100, 100)))
    best = int(np.argmax(s))
    if s[best] <= min_score:
        return None
    r = reg.reshape(-1, 16).astype(np.float64)
    cx, cy = r[:, 0] / size + anc[:, 0], r[:, 1] / size + anc[:, 1]
    bw, bh = r[:, 2] / size, r[:, 3] / size
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)
    b0 = boxes[best]
    iw = np.clip(np.minimum(boxes[:, 2], b0[2]) - np.maximum(boxes[:, 0], b0[0]), 0, None)
    ih = np.clip(np.minimum(boxes[:, 3], b0[3]) - np.maximum(boxes[:, 1], b0[1]), 0, None)
    inter = iw * ih
    union = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) + (b0[2] - b0[0]) * (b0[3] - b0[1]) - inter
    keep = (s >= min_score) & (union > 0) & (inter / np.where(union > 0, union, 1) >= 0.3)
    avg = (boxes[keep] * s[keep, None]).sum(0) / s[keep].sum()
    scale, ox, oy = lb
    x0, y0, x1, y1 = avg * size * scale
    return (x0 - ox, y0 - oy, x1 - x0, y1 - y0, float(s[best]))


def to_haar(det, m: dict) -> tuple[float, float, float, float]:
    """A BlazeFace box (x, y, w, h) -> the Haar-equivalent box the crop policy expects (DETECTOR["toHaar"])."""
    x, y, w, h = (float(v) for v in det[:4])
    s = max(w, h)
    cx, cy, side = x + w / 2 + m["dx"] * s, y + h / 2 + m["dy"] * s, m["k"] * s
    return (cx - side / 2, cy - side / 2, side, side)


def detect(model: Path, rgb: np.ndarray, size: int = 128, min_score: float = 0.5):
    """Run BlazeFace on an RGB uint8 frame -> (x, y, w, h, score) or None."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(model))
    it.allocate_tensors()
    x, lb = detector_input(rgb, size)
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    outs = [it.get_tensor(d["index"]) for d in it.get_output_details()]
    n = len(anchors(size))
    reg = next(o for o in outs if o.size == n * 16)
    sc = next(o for o in outs if o.size == n)
    return decode_best(reg, sc, anchors(size), lb, size, min_score)
