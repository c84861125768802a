"""Real tiny models and manifests for the package tests (helpers; no tests here).

Each is a real .tflite made with TensorFlow's converter from a small Keras
model (full int8 calibration on random images), with a manifest built from the
interpreter's own tensor details and finalized by devicekit.manifest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def make_tflite(out_dir: Path, name: str, shape_nchw, landmarks: int, color: str, mean, std,
                int8_output: bool, crop: dict | None = None, one_euro: dict | None = None, seed: int = 0) -> Path:
    """A landmark model: conv -> dense -> [N, 2] coordinates in input pixels; int8 input (and output)."""
    import tensorflow as tf


    tf.keras.utils.set_random_seed(seed)
    _, c, h, w = shape_nchw
    inp = tf.keras.Input((h, w, c), batch_size=1)
    x = tf.keras.layers.Conv2D(4, 3, strides=2, activation="relu")(inp)
    x = tf.keras.layers.AveragePooling2D(4)(x)
    x = tf.keras.layers.Flatten()(x)
    x = tf.keras.layers.Dense(landmarks * 2, activation="sigmoid")(x)
    x = tf.keras.layers.Reshape((landmarks, 2))(x)
    out = tf.keras.layers.Lambda(lambda t: t * tf.constant([w, h], tf.float32))(x)
    model = tf.keras.Model(inp, out)
    rng = np.random.default_rng(seed)

    def rep():
        for _ in range(16):
            yield [rng.uniform(-1, 1, (1, h, w, c)).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8 if int8_output else tf.float32
    data = conv.convert()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.tflite-int8.tflite"
    path.write_bytes(data)
    return write_manifest(path, name, shape_nchw, landmarks, color, mean, std, crop, one_euro)


def tensor_infos(path: Path):
    from ai_edge_litert.interpreter import Interpreter

    from devicekit.manifest import TensorInfo

    it = Interpreter(model_path=str(path))

    def info(d, layout, desc):
        s, z = d["quantization"]
        q = {"scale": float(s), "zero_point": int(z)} if s else None
        return TensorInfo(d["name"], [int(v) for v in d["shape"]], np.dtype(d["dtype"]).name, layout, q, desc)

    return ([info(d, "NHWC", "image") for d in it.get_input_details()],
            [info(d, None, "landmarks") for d in it.get_output_details()])


def write_manifest(path: Path, name, shape_nchw, landmarks, color, mean, std, crop=None, one_euro=None) -> Path:
    from devicekit.config import InputSpec
    from devicekit.manifest import Manifest, finalize

    inputs, outputs = tensor_infos(path)
    pre = InputSpec(shape=tuple(shape_nchw), mean=tuple(mean), std=tuple(std), color=color).to_json()
    if crop is not None:
        pre["crop"] = crop
    m = Manifest(artifact=path.name, target="tflite-int8", format="tflite",
                 model={"name": name, "source": "test", "task": "landmarks", "landmarks": landmarks,
                        "layout": f"test{landmarks}", "coords": "input_pixels"},
                 inputs=inputs, outputs=outputs, preprocess=pre,
                 postprocess={"one_euro": one_euro} if one_euro else {})
    finalize(m, path)
    return path


def make_mlpackage(out_dir: Path, name: str, shape_nchw, landmarks: int, color: str, mean, std) -> Path:
    """A real CoreML .mlpackage (mlprogram, iOS17) from a tiny torch model, with its manifest."""
    import coremltools as ct
    import torch

    from devicekit.config import InputSpec
    from devicekit.manifest import Manifest, TensorInfo, finalize

    _, c, h, w = shape_nchw

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(c, 4, 3, stride=2)
            self.fc = torch.nn.Linear(4, landmarks * 2)

        def forward(self, x):
            y = torch.relu(self.conv(x)).mean(dim=(2, 3))
            y = torch.sigmoid(self.fc(y)).reshape(1, landmarks, 2)
            return y * torch.tensor([w, h], dtype=torch.float32)

    torch.manual_seed(0)
    traced = torch.jit.trace(Net().eval(), torch.zeros(1, c, h, w))
    ml = ct.convert(traced, inputs=[ct.TensorType(name="image", shape=(1, c, h, w))],
                    outputs=[ct.TensorType(name="landmarks")], convert_to="mlprogram",
                    minimum_deployment_target=ct.target.iOS17)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.coreml-fp16.mlpackage"
    ml.save(str(path))
    pre = InputSpec(shape=tuple(shape_nchw), mean=tuple(mean), std=tuple(std), color=color).to_json()
    m = Manifest(artifact=path.name, target="coreml-fp16", format="coreml",
                 model={"name": name, "source": "test", "task": "landmarks", "landmarks": landmarks,
                        "layout": f"test{landmarks}", "coords": "input_pixels"},
                 inputs=[TensorInfo("image", list(shape_nchw), "float32", "NCHW", None, "image")],
                 outputs=[TensorInfo("landmarks", [1, landmarks, 2], "float32", None, None, "landmarks")],
                 preprocess=pre, postprocess={})
    finalize(m, path)
    return path
