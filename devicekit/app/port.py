"""A line-by-line Python port of the generated apps' platform-free code (Crop.kt / Preprocess.kt / Decode.kt and
their Swift twins in Processing.swift and ModelSpec.swift), in the same float32/float64 arithmetic.

Used for two things: the golden input every generated project carries (``golden.py``: the app-side
preprocessing of the golden face, so the on-device test can check its own preprocessing against it), and the
tests, which run the compiled Kotlin and this port on the same vectors (the Swift cannot be run here; the
port is the Swift's stand-in, written from the same lines).

``spec`` is ``ModelFacts.spec_json()`` (the ModelSpec fields, camelCase). Frames are uint8 RGB [H, W, 3].
"""

from __future__ import annotations

import math

import numpy as np

F32 = np.float32


def crop_from_detection(spec: dict, x: float, y: float, w: float, h: float) -> tuple[float, float, float, float]:
    """CropBox.fromDetection: (cx, cy, size, angle) for a face box under the manifest's crop policy."""
    side = spec["cropEnlarge"] * (max(w, h) if spec["cropSquare"] else w)
    return (x + w / 2.0, y + h / 2.0 + spec["cropShiftY"] * h, side, 0.0)


def _scale(spec: dict, box) -> float:
    return max(spec["inputWidth"], spec["inputHeight"]) / box[2]


def to_image(spec: dict, box, u, v):
    """CropBox.toImage: model-input pixels -> image pixels (float64, as Kotlin/Swift Double)."""
    cx, cy, _, ang = box
    k = _scale(spec, box)
    c, s = math.cos(ang), math.sin(ang)
    du = (np.asarray(u, np.float64) - spec["inputWidth"] / 2.0) / k
    dv = (np.asarray(v, np.float64) - spec["inputHeight"] / 2.0) / k
    return cx + c * du - s * dv, cy + s * du + c * dv


def _channels(spec: dict, rgb: np.ndarray) -> np.ndarray:
    """Preprocessor.channelsOf: the model's colour order as float32 (gray: OpenCV's fixed-point BT.601)."""
    r, g, b = (rgb[..., i].astype(np.int64) for i in range(3))
    if spec["color"] == "gray":
        return ((r * 9798 + g * 19235 + b * 3735 + 16384) >> 15).astype(F32)[..., None]
    order = (r, g, b) if spec["color"] == "rgb" else (b, g, r)
    return np.stack(order, -1).astype(F32)


def sample(spec: dict, rgb: np.ndarray, box) -> np.ndarray:
    """Preprocessor.sample: the 0-255 plane [H, W, C] (float32), bilinear at input-pixel centres, black outside,
    n x n samples averaged when the crop shrinks the face by more than 2x."""
    w, h = spec["inputWidth"], spec["inputHeight"]
    src = _channels(spec, rgb)
    H, W, ch = src.shape
    k = _scale(spec, box)
    n = math.ceil(0.5 / k) if k < 0.5 else 1
    pad = np.zeros((H + 2, W + 2, ch), F32)
    pad[1:-1, 1:-1] = src
    acc = np.zeros((h, w, ch), F32)
    uu, vv = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    for sy in range(n):
        for sx in range(n):
            px, py = to_image(spec, box, uu + (sx + 0.5) / n, vv + (sy + 0.5) / n)
            x, y = px - 0.5, py - 0.5
            x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
            fx, fy = (x - x0).astype(F32)[..., None], (y - y0).astype(F32)[..., None]
            out = np.zeros((h, w, ch), F32)
            for dy in (0, 1):
                wy = (F32(1) - fy) if dy == 0 else fy
                for dx in (0, 1):
                    wgt = wy * ((F32(1) - fx) if dx == 0 else fx)
                    xi, yi = np.clip(x0 + dx + 1, 0, W + 1), np.clip(y0 + dy + 1, 0, H + 1)
                    out = out + wgt * pad[yi, xi]  # outside the frame the padded pixel is 0
            acc = acc + out
    return acc / F32(n * n)


def normalize(spec: dict, plane: np.ndarray) -> np.ndarray:
    """Preprocessor.normalize: (pixel - mean) / std in float32."""
    mean = np.asarray(spec["mean"], F32)
    std = np.asarray(spec["std"], F32)
    return (plane.astype(F32) - mean) / std


def quantize(spec: dict, x: np.ndarray) -> np.ndarray:
    """Preprocessor.quantize: q = roundHalfEven(x / scale + zeroPoint) in float32, saturated (one rule everywhere:
    devicekit.runtime.tflite, Preprocess.kt, Processing.swift and the web app's pipeline.js)."""
    lo, hi = (-128, 127) if spec["inputDtype"] == "int8" else (0, 255)
    v = np.asarray(x, F32) / F32(spec["inputScale"]) + F32(spec["inputZeroPoint"])
    return np.clip(np.rint(v), lo, hi).astype(np.int8 if spec["inputDtype"] == "int8" else np.uint8)


def input_tensor(spec: dict, rgb: np.ndarray, box) -> np.ndarray:
    """The model input as Preprocessor.run writes it: [H, W, C] (NHWC) or [C, H, W] (NCHW), in the input dtype."""
    x = normalize(spec, sample(spec, rgb, box))
    if spec["inputLayout"] == "NCHW":
        x = x.transpose(2, 0, 1)
    if spec["inputDtype"] in ("int8", "uint8"):
        return quantize(spec, x)
    return np.ascontiguousarray(x, F32)


def decode(spec: dict, values: np.ndarray, box) -> np.ndarray:
    """Decoder.toImage: landmark outputs (already dequantised) -> image pixels [N, 2] (float64)."""
    v = np.asarray(values, np.float64).reshape(-1)[: spec["numLandmarks"] * spec["valuesPerLandmark"]]
    v = v.reshape(spec["numLandmarks"], spec["valuesPerLandmark"])
    sx = spec["inputWidth"] if spec["coords"] == "normalized" else 1.0
    sy = spec["inputHeight"] if spec["coords"] == "normalized" else 1.0
    x, y = to_image(spec, box, v[:, 0] * sx, v[:, 1] * sy)
    return np.stack([x, y], -1)
