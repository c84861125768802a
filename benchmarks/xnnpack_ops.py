#!/usr/bin/env python3
"""Which TFLite ops XNNPACK takes, measured: one small graph per op, float32 and full-int8, through the real delegate.

Each case is a TensorFlow function converted by TFLiteConverter (fp32, and
full-integer int8 calibrated on random data), loaded by ai_edge_litert with
the default resolver (XNNPACK applied, as on a phone) and inspected with
devicekit.runtime.probe: an op is "taken" when a DELEGATE node covers it.
Writes benchmarks/xnnpack_ops.md and the op lists of
devicekit/data/rules/xnnpack.json (what `devicekit check` predicts with when
it cannot ask LiteRT itself; `check` measures the file when it can).

    .venv/bin/python benchmarks/xnnpack_ops.py            # ~2 min
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
S = (1, 8, 8, 16)


def cases(tf, np):
    rng = np.random.default_rng(0)
    alpha = rng.uniform(0.05, 0.3, (1, 1, 16)).astype(np.float32)
    w = rng.normal(0, 0.2, (3, 3, 16, 16)).astype(np.float32)
    return {
        "ABS": lambda x: tf.abs(x),
        "ADD": lambda x: x + x * 0.5,
        "AVERAGE_POOL_2D": lambda x: tf.nn.avg_pool2d(x, 2, 2, "VALID"),
        "BATCH_MATMUL": lambda x: tf.matmul(tf.reshape(x, (1, 64, 16)), tf.reshape(x, (1, 64, 16)), transpose_b=True),
        "CONCATENATION": lambda x: tf.concat([x, x * 2.0], axis=3),
        "CONV_2D": lambda x: tf.nn.conv2d(x, w, 1, "SAME"),
        "DEPTHWISE_CONV_2D": lambda x: tf.nn.depthwise_conv2d(x, w[:, :, :, :1], [1, 1, 1, 1], "SAME"),
        "DIV": lambda x: x / (tf.abs(x) + 1.0),
        "ELU": lambda x: tf.nn.elu(x),
        "EXP": lambda x: tf.exp(x * 0.1),
        "FULLY_CONNECTED": lambda x: tf.matmul(tf.reshape(x, (1, 1024)), tf.constant(rng.normal(0, 0.1, (1024, 8)).astype(np.float32))),
        "GELU": lambda x: tf.nn.gelu(x, approximate=True),
        "HARD_SWISH": lambda x: x * tf.nn.relu6(x + 3.0) / 6.0,
        "LEAKY_RELU": lambda x: tf.nn.leaky_relu(x, 0.1),
        "LOGISTIC": lambda x: tf.sigmoid(x),
        "MAXIMUM": lambda x: tf.maximum(x, alpha * x),
        "MAX_POOL_2D": lambda x: tf.nn.max_pool2d(x, 2, 2, "VALID"),
        "MEAN": lambda x: tf.reduce_mean(x, axis=[1, 2], keepdims=True),
        "MINIMUM": lambda x: tf.minimum(x, 0.5),
        "MIRROR_PAD": lambda x: tf.pad(x, [[0, 0], [0, 1], [0, 1], [0, 0]], mode="SYMMETRIC"),
        "MUL": lambda x: x * tf.constant(alpha),
        "PAD": lambda x: tf.pad(x, [[0, 0], [0, 1], [0, 1], [0, 0]]),
        "PADV2": lambda x: tf.pad(x, [[0, 0], [0, 1], [0, 1], [0, 0]], constant_values=-1.0),
        "RELU": lambda x: tf.nn.relu(x),
        "RELU6": lambda x: tf.nn.relu6(x),
        "RESHAPE": lambda x: tf.reshape(x, (1, 64, 16)) * 2.0,
        "RESIZE_BILINEAR": lambda x: tf.image.resize(x, (16, 16)),
        "RSQRT": lambda x: tf.math.rsqrt(x * x + 1.0),
        "SOFTMAX": lambda x: tf.nn.softmax(tf.reshape(x, (1, -1))),
        "SQUARED_DIFFERENCE": lambda x: tf.math.squared_difference(x, tf.reduce_mean(x, axis=-1, keepdims=True)),
        "STRIDED_SLICE": lambda x: x[:, 1:7, :, :] * 2.0,
        "SUB": lambda x: x - x * 0.5,
        "SUM": lambda x: tf.reduce_sum(x, axis=[1, 2]),
        "TANH": lambda x: tf.tanh(x),
        "TRANSPOSE": lambda x: tf.transpose(x, [0, 2, 1, 3]) * 2.0,
    }


def convert(tf, np, fn, int8: bool) -> bytes:
    rng = np.random.default_rng(1)

    @tf.function(input_signature=[tf.TensorSpec(S, tf.float32)])
    def f(x):
        return fn(x)

    conv = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
    if int8:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([rng.normal(0, 2, S).astype(np.float32)] for _ in range(16))
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


def main() -> int:
    import numpy as np
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from devicekit.runtime.probe import probe

    t0 = time.time()
    rows, taken = [], {"float32": set(), "int8": set()}
    with tempfile.TemporaryDirectory() as d:
        for name, fn in cases(tf, np).items():
            row = {"op": name}
            for dtype in ("float32", "int8"):
                try:
                    data = convert(tf, np, fn, dtype == "int8")
                except Exception as exc:  # noqa: BLE001 - an op without an int8 kernel
                    row[dtype] = f"does not convert ({str(exc).strip().splitlines()[0][:60]})"
                    continue
                ops = [o["op_name"] for o in Interpreter(model_content=data)._get_ops_details()]
                if name not in ops:
                    row[dtype] = f"converter emitted {', '.join(sorted(set(ops)))}"
                    continue
                path = Path(d) / f"{name}-{dtype}.tflite"
                path.write_bytes(data)
                res = probe(path)
                left = {o["op"] for o in res.get("xnnpack", {}).get("left", [])}
                ok = res["verdict"] in ("delegated", "partly") and name not in left
                row[dtype] = "taken" if ok else ("not taken" if res["verdict"] != "fails" else "fails to prepare")
                if ok:
                    taken[dtype].add(name)
            rows.append(row)
            print(f"{name:20s} float32: {row.get('float32')}  int8: {row.get('int8')}", flush=True)
    import ai_edge_litert

    version = getattr(ai_edge_litert, "__version__", "2.1.0")
    rules_path = ROOT / "devicekit" / "data" / "rules" / "xnnpack.json"
    rules = json.loads(rules_path.read_text())
    measured = sorted(r["op"] for r in rows)
    for dtype in ("float32", "int8"):
        # measured ops follow the measurement; ops this script does not build keep their documented entry
        keep = [op for op in rules[dtype] if op not in measured]
        rules[dtype] = sorted(set(keep) | taken[dtype])
    rules["source"] = {"document": "measured by benchmarks/xnnpack_ops.py (see benchmarks/xnnpack_ops.md) on ai-edge-litert "
                       f"{version}; ops it does not build: tensorflow/lite/delegates/xnnpack/README.md",
                       "version": f"ai-edge-litert {version}, measured {date.today()}"}
    rules_path.write_text(json.dumps(rules, indent=1) + "\n")
    lines = [
        "# Which ops XNNPACK takes, measured",
        "",
        f"Command: `.venv/bin/python benchmarks/xnnpack_ops.py` ({date.today()}, {platform.machine()}, "
        f"{os.cpu_count()} cores, ai-edge-litert {version}, {time.time() - t0:.0f} s).",
        "",
        "One small graph per op, converted by TFLiteConverter as float32 and as full-integer int8, loaded with "
        "LiteRT's default resolver (XNNPACK applied, as on a phone); an op is taken when a DELEGATE node covers it. "
        "The lists in devicekit/data/rules/xnnpack.json are written from this table.",
        "",
        "| op | float32 | int8 |",
        "|---|---|---|",
    ] + [f"| {r['op']} | {r.get('float32')} | {r.get('int8')} |" for r in rows]
    (ROOT / "benchmarks" / "xnnpack_ops.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
