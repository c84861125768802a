"""face-api.js's FaceLandmark68Net, ported to PyTorch: a second teacher for the demo model's labels.

Weights: ``model/face_landmark_68_model.bin`` + ``face_landmark_68_model-weights_manifest.json``
from the npm package ``@vladmandic/face-api`` (MIT; the maintained fork of
``face-api.js``, whose own npm package ships no weights; same file, same
manifest). Fetched by ``scripts/fetch_train_faces.py`` into the face-data
cache's ``teacher/`` folder.

The network (face-api.js src/faceFeatureExtractor + faceProcessor): a 112x112
RGB crop minus the mean RGB (122.782, 117.001, 104.298), divided by 255; four
"dense blocks" of depthwise-separable 3x3 convolutions (32, 64, 128, 256
channels, stride 2 each, TensorFlow "same" padding) with ReLU and dense
residual sums; 7x7 average pool; one fully connected layer to 136 numbers,
the 68 (x, y) in [0, 1] of the crop. 356 KB of uint8-quantized weights
(dequantized here: ``q * scale + min``).

The crop: face-api.js feeds the face detector's box (tight around brows to
chin); ``FaceApiTeacher.label`` takes a square box in image pixels, and
``SPAN`` (crop side / the landmarks' bbox width) is the crop it is run at when
refined from its own landmarks, chosen on held-out faces (see
benchmarks/train_heatmap2s.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from devicekit.face.crop import CropBox, crop_image, to_image

TEACHER = {
    "name": "face-api.js FaceLandmark68Net (face_landmark_68_model)",
    "package": "@vladmandic/face-api@1.7.15 (npm)",
    "license": "MIT",
    "points": 68,
    "map": "none (iBUG 68 order)",
    "port": "scripts/faceapi_teacher.py (PyTorch)",
}
SIZE = 112
MEAN_RGB = (122.782, 117.001, 104.298)
SPAN = 1.25  # crop side / landmarks' bbox width when refining: the most flip-consistent of 1.1/1.25/1.4 on the held-out video


def load_weights(manifest: Path) -> dict[str, np.ndarray]:
    groups = json.loads(Path(manifest).read_text())
    out = {}
    for g in groups:
        raw = b"".join((Path(manifest).parent / p).read_bytes() for p in g["paths"])
        off = 0
        for w in g["weights"]:
            n = int(np.prod(w["shape"]))
            q = w.get("quantization")
            if q:
                a = np.frombuffer(raw, np.uint8, n, off).astype(np.float32) * q["scale"] + q["min"]
                off += n
            else:
                a = np.frombuffer(raw, np.float32, n, off).copy()
                off += 4 * n
            out[w["name"]] = a.reshape(w["shape"])
    return out


def build(manifest: Path):
    """A torch module: [N, 3, 112, 112] RGB 0-255 -> [N, 68, 2] points in crop pixels (continuous coords)."""
    import torch
    import torch.nn.functional as F

    w = {k: torch.from_numpy(v) for k, v in load_weights(manifest).items()}

    def sep(x, p, stride):
        dw = w[f"{p}/depthwise_filter"].permute(2, 3, 0, 1)  # [3,3,C,1] -> [C,1,3,3]
        pw = w[f"{p}/pointwise_filter"].permute(3, 2, 0, 1)  # [1,1,C,O] -> [O,C,1,1]
        x = F.pad(x, (0, 1, 0, 1)) if stride == 2 else F.pad(x, (1, 1, 1, 1))  # TF "same"
        x = F.conv2d(x, dw, stride=stride, groups=x.shape[1])
        return F.conv2d(x, pw) + w[f"{p}/bias"].view(1, -1, 1, 1)

    def block(x, p, first):
        if first:
            out1 = F.conv2d(F.pad(x, (0, 1, 0, 1)), w[f"{p}/conv0/filters"].permute(3, 2, 0, 1), stride=2)
            out1 = F.relu(out1 + w[f"{p}/conv0/bias"].view(1, -1, 1, 1))
        else:
            out1 = F.relu(sep(x, f"{p}/conv0", 2))
        out2 = sep(out1, f"{p}/conv1", 1)
        out3 = sep(F.relu(out1 + out2), f"{p}/conv2", 1)
        out4 = sep(F.relu(out1 + out2 + out3), f"{p}/conv3", 1)
        return F.relu(out1 + out2 + out3 + out4)

    class Net(torch.nn.Module):
        def forward(self, x):
            x = (x - torch.tensor(MEAN_RGB).view(1, 3, 1, 1)) / 255.0
            for i in range(4):
                x = block(x, f"dense{i}", i == 0)
            x = F.avg_pool2d(x, 7, 2).flatten(1)
            y = x @ w["fc/weights"] + w["fc/bias"]
            return y.view(-1, 68, 2) * SIZE

    return Net().eval()


class FaceApiTeacher:
    def __init__(self, manifest: str | Path):
        import torch

        torch.set_num_threads(1)  # small convolutions: 2 threads on a shared 2-core machine were 25x slower
        self.net = build(Path(manifest))

    def run(self, image_bgr: np.ndarray, box: CropBox) -> np.ndarray:
        """68 points in image pixels from one square crop."""
        import torch

        crop = crop_image(image_bgr, box, SIZE)[..., ::-1].astype(np.float32)
        with torch.no_grad():
            p = self.net(torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1)))[None])[0].numpy()
        return to_image(p, box, SIZE)

    @staticmethod
    def roi(p68: np.ndarray, span: float = SPAN) -> CropBox:
        """The axis-aligned square crop around 68 points, side ``span`` * their bbox width, centred on the bbox."""
        lo, hi = p68.min(0), p68.max(0)
        c = (lo + hi) / 2
        return CropBox(float(c[0]), float(c[1]), float((hi - lo).max() * span))

    def label(self, image_bgr: np.ndarray, start: CropBox, iters: int = 3, span: float = SPAN) -> np.ndarray:
        box = start
        p = self.run(image_bgr, box)
        for _ in range(iters - 1):
            box = self.roi(p, span)
            p = self.run(image_bgr, box)
        return p

    def label_flip_tta(self, image_bgr: np.ndarray, start: CropBox, iters: int = 3, span: float = SPAN) -> np.ndarray:
        """``label`` averaged with ``label`` of the mirrored image (mapped back with the iBUG flip permutation)."""
        from face_teacher import FLIP

        w = image_bgr.shape[1]
        a = self.label(image_bgr, start, iters, span)
        fb = CropBox(w - start.cx, start.cy, start.size, -start.angle)
        b = self.label(np.ascontiguousarray(image_bgr[:, ::-1]), fb, iters, span)[FLIP]
        b[:, 0] = w - b[:, 0]
        return (a + b) / 2
