"""Small real models for the bench tests, made once and cached in the temp dir.

A tiny Keras conv net converted with tf.lite.TFLiteConverter (run in a
subprocess so the test process never imports tensorflow), and a tiny ONNX
conv model built with onnx.helper.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

_KERAS = r"""
import sys
import tensorflow as tf
tf.keras.utils.set_random_seed(0)
inp = tf.keras.Input((64, 64, 3), batch_size=1)
x = tf.keras.layers.Conv2D(16, 3, strides=2, activation="relu")(inp)
x = tf.keras.layers.Conv2D(32, 3, strides=2, activation="relu")(x)
x = tf.keras.layers.GlobalAveragePooling2D()(x)
out = tf.keras.layers.Dense(136)(x)
conv = tf.lite.TFLiteConverter.from_keras_model(tf.keras.Model(inp, out))
open(sys.argv[1], "wb").write(conv.convert())
"""


def _cache_dir() -> Path:
    d = Path(tempfile.gettempdir()) / f"devicekit-test-models-{os.getuid() if hasattr(os, 'getuid') else 0}"
    d.mkdir(parents=True, exist_ok=True)
    return d


def tiny_tflite() -> Path:
    out = _cache_dir() / f"tiny-{hashlib.sha256(_KERAS.encode()).hexdigest()[:10]}.tflite"
    if not out.exists():
        tmp = out.with_suffix(".tmp")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
        subprocess.run(["nice", sys.executable, "-c", _KERAS, str(tmp)], check=True, env=env, capture_output=True, timeout=600)
        os.replace(tmp, out)
    return out


def tiny_onnx() -> Path:
    out = _cache_dir() / "tiny-v1.onnx"
    if not out.exists():
        import numpy as np
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        rng = np.random.default_rng(0)
        w = numpy_helper.from_array(rng.normal(size=(8, 3, 3, 3)).astype(np.float32), "w")
        nodes = [
            helper.make_node("Conv", ["x", "w"], ["c"], strides=[2, 2]),
            helper.make_node("Relu", ["c"], ["r"]),
            helper.make_node("GlobalAveragePool", ["r"], ["y"]),
        ]
        g = helper.make_graph(
            nodes,
            "tiny",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 64, 64])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 1, 1])],
            [w],
        )
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        onnx.checker.check_model(m)
        tmp = out.with_suffix(".tmp")
        onnx.save(m, str(tmp))
        os.replace(tmp, out)
    return out


_MLPACKAGE = r"""
import sys
import coremltools as ct
from coremltools.converters.mil import Builder as mb

@mb.program(input_specs=[mb.TensorSpec(shape=(1, 3, 64, 64))], opset_version=ct.target.iOS17)
def prog(x):
    return mb.relu(x=x)

ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS17).save(sys.argv[1])
"""


def tiny_mlpackage() -> Path:
    """A real (tiny) CoreML .mlpackage made with coremltools' MIL builder (Linux can make, not run, it)."""
    import shutil

    out = _cache_dir() / f"tiny-{hashlib.sha256(_MLPACKAGE.encode()).hexdigest()[:10]}.mlpackage"
    if not out.exists():
        tmp = out.with_name(out.stem + "-tmp.mlpackage")
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run(["nice", sys.executable, "-c", _MLPACKAGE, str(tmp)], check=True, capture_output=True, timeout=600)
        os.replace(tmp, out)
    return out


def fake_apk(path: Path, package: str = "com.devicekit.bench") -> Path:
    """A zip the simulated phone's `pm install` accepts (it reads the package from a text entry)."""
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        z.writestr("devicekit-package.txt", package)
        z.writestr("AndroidManifest.xml", b"\x03\x00\x08\x00")
    return path


def tiny_landmark_tflite(out_dir: Path) -> Path:
    """The tiny .tflite with a manifest that describes it as a 68-point landmark model (float input [1,64,64,3],
    output [1,136]): what --golden needs (the golden check reads the model's tensors and gate from the manifest)."""
    import shutil

    from devicekit.manifest import Manifest, TensorInfo, finalize

    out_dir.mkdir(parents=True, exist_ok=True)
    art = out_dir / "tiny.tflite-fp32.tflite"
    shutil.copyfile(tiny_tflite(), art)
    finalize(
        Manifest(
            artifact=art.name,
            target="tflite-fp32",
            format="tflite",
            model={"name": "tiny", "source": "device_tests", "task": "landmarks", "landmarks": 68, "layout": "ibug68", "coords": "input_pixels"},
            inputs=[TensorInfo("input", [1, 64, 64, 3], "float32", "NHWC")],
            outputs=[TensorInfo("out", [1, 136], "float32", None, None, "landmarks")],
            preprocess={"shape": [1, 3, 64, 64], "layout": "NCHW", "mean": [127.5] * 3, "std": [128.0] * 3, "color": "rgb"},
        ),
        art,
    )
    return art
