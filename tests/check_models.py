"""Real model files for the check tests (helpers, not tests).

- MediaPipe's third-party .tflite face models, from the mediapipe wheel on PyPI
  (scripts/fetch_test_models.py; cached; the tests skip with the reason when offline).
- Small models made here: a Keras CNN converted to fp32 and full-int8 .tflite,
  an ONNX graph built with onnx.helper, a CoreML .mlpackage from a small torch module.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from fetched import fetched

ROOT = Path(__file__).resolve().parent.parent
_TMP = Path(tempfile.mkdtemp(prefix="devicekit-check-tests-"))


def mediapipe_dir() -> Path:
    """MediaPipe's face models from its wheel (scripts/fetch_test_models.py)."""
    return fetched("fetch_test_models")


def mediapipe(name: str) -> Path:
    return mediapipe_dir() / name


@functools.lru_cache(maxsize=None)
def keras_tflite(kind: str = "fp32") -> Path:
    """A small CNN (conv 3x3, pool, depthwise, FC) converted by TFLiteConverter: fp32 or full int8."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.random.set_seed(0)
    inp = tf.keras.Input((32, 32, 3), batch_size=1)
    x = tf.keras.layers.Conv2D(8, 3, activation="relu")(inp)
    x = tf.keras.layers.MaxPool2D()(x)
    x = tf.keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = tf.keras.layers.Conv2D(16, 1)(x)
    x = tf.keras.layers.Flatten()(x)
    out = tf.keras.layers.Dense(10)(x)
    model = tf.keras.Model(inp, out)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if kind == "int8":
        rng = np.random.default_rng(0)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([rng.random((1, 32, 32, 3), np.float32)] for _ in range(8))
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    elif kind == "fp16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    path = _TMP / f"small_cnn.{kind}.tflite"
    path.write_bytes(conv.convert())
    return path


@functools.lru_cache(maxsize=1)
def small_onnx() -> Path:
    """Conv 3x3 (8 ch) -> Relu -> MaxPool 2x2 -> Flatten -> Gemm(10) on 1x3x16x16, built with onnx.helper."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(np.zeros(8, np.float32), "b")
    fw = numpy_helper.from_array(rng.standard_normal((10, 8 * 7 * 7)).astype(np.float32), "fw")
    fb = numpy_helper.from_array(np.zeros(10, np.float32), "fb")
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1),
    ]
    g = helper.make_graph(nodes, "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], [w, b, fw, fb])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8  # onnxruntime 1.23 loads IR <= 11 (onnx 1.19 writes 12); check fails what the runtime cannot load
    onnx.checker.check_model(m)
    path = _TMP / "small.onnx"
    onnx.save(m, str(path))
    return path


@functools.lru_cache(maxsize=None)
def small_mlpackage(precision: str = "fp16") -> Path:
    """A small torch CNN converted by coremltools to an mlprogram .mlpackage (fp16 or fp32 compute precision)."""
    import coremltools as ct
    import torch
    from torch import nn

    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 7 * 7, 10)).eval()
    traced = torch.jit.trace(m, torch.zeros(1, 3, 16, 16))
    ml = ct.convert(traced, inputs=[ct.TensorType(name="x", shape=(1, 3, 16, 16))], outputs=[ct.TensorType(name="y")],
                    convert_to="mlprogram", minimum_deployment_target=ct.target.iOS17,
                    compute_precision=ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16)
    path = _TMP / f"small.{precision}.mlpackage"
    ml.save(str(path))
    return path


def cli(*args: str, env: dict | None = None, timeout: int = 300):
    import subprocess

    return subprocess.run([sys.executable, "-m", "devicekit", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)
