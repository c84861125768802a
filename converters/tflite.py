"""PyTorch/ONNX -> TFLite through onnx2tf, with int8 under a quantisation policy.

Steps, in order: export ONNX (a copy for ONNX sources) -> onnx2tf to a
TensorFlow SavedModel (NHWC, no TRANSPOSE for layout-agnostic graphs) ->
TFLiteConverter for fp32 / fp16, or calibrate on real images and quantise
with the MLIR quantiser for int8, keeping the policy's float tail.

onnx2tf gotchas handled here: it downloads a calibration sample for its
validation step even offline (a dummy file in its working directory stops
that), it rewrites its input (it gets a copy), it runs onnxsim as a
subprocess (the venv's bin goes on PATH), and Keras' SavedModel writer turns
every weight into JSON (onnx2tf_run stops that: 21+ GB on basiccnn-pool1). Conversion makes no network use:
the subprocess gets a dead proxy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from devicekit.errors import ConversionError, UsageError
from devicekit.manifest import TensorInfo, finalize

from .base import ConversionResult, ConvertOptions, base_manifest, register_target
from .onnx_export import export_onnx

# Ops that hold learned weights: the float tail starts after the last of them.
WEIGHTED_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "CONV_3D", "BATCH_MATMUL"}
# Ops whose outputs are probabilities: everything computed from them is coordinate math.
FRAGILE_OPS = {"EXP", "SOFTMAX", "LOG_SOFTMAX"}
# Ops that only move or rescale data (coordinate decoding): a weighted op feeding the
# output through these alone is the output layer (a coordinate regressor's last FC).
SHAPE_OPS = {"RESHAPE", "SQUEEZE", "EXPAND_DIMS", "CONCATENATION", "DEQUANTIZE", "QUANTIZE", "MUL", "ADD", "SUB", "DIV"}
ONNX2TF_SAMPLE = "calibration_image_sample_data_20x128x128x3_float32.npy"
TOOLS = ("onnx2tf", "tensorflow", "ai-edge-litert")


def _offline_env() -> dict:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env[k] = "http://127.0.0.1:9"  # discard port: any download attempt fails fast
    env["no_proxy"] = env["NO_PROXY"] = ""
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


def saved_model(model) -> Path:
    """ONNX -> SavedModel with onnx2tf, once per loaded model (cached on it)."""
    if "saved_model" in model.cache:
        return model.cache["saved_model"]
    tmp = tempfile.TemporaryDirectory(prefix="devicekit-tflite-")
    model.cache["_tflite_tmp"] = tmp  # removed with the model
    work = Path(tmp.name)
    export_onnx(model, work / "model.onnx")
    np.save(work / ONNX2TF_SAMPLE, np.zeros((20, 128, 128, 3), np.float32))
    # onnx2tf's CLI through a wrapper that stops Keras writing every weight as JSON (see onnx2tf_run)
    cmd = [sys.executable, "-m", "devicekit.converters.onnx2tf_run", "-i", "model.onnx", "-o", "saved", "-n"]
    r = subprocess.run(cmd, cwd=work, env=_offline_env(), capture_output=True, text=True, timeout=3600)
    if r.returncode == 127:
        from devicekit.errors import EnvironmentMissing

        raise EnvironmentMissing("onnx2tf is not installed", hint="pip install 'devicekit[convert]'")
    out = work / "saved"
    if r.returncode != 0 or not (out / "saved_model.pb").exists():
        raise ConversionError(f"onnx2tf failed on {model.name}: {_subprocess_reason(r)}")
    model.cache["saved_model"] = out
    return out


def _subprocess_reason(r: subprocess.CompletedProcess) -> str:
    """The real reason a converter subprocess failed, not TensorFlow's start-up chatter."""
    import re
    import signal

    if r.returncode < 0:
        name = signal.Signals(-r.returncode).name
        hint = " (killed: most likely out of memory; close other jobs or use a machine with more RAM)" if name == "SIGKILL" else ""
        return f"the process was killed by {name}{hint}"
    noise = re.compile(r"^(\s*[IWEF]\d{4} |\d{4}-\d\d-\d\d |WARNING: All log messages|.*cuda|.*oneDNN|.*computation placer)")
    ansi = re.compile(r"\x1b\[[0-9;]*m")
    lines = [ansi.sub("", ln).strip() for ln in (r.stdout + "\n" + r.stderr).splitlines()]
    lines = [ln for ln in lines if ln and not noise.match(ln)]
    errors = [ln for ln in lines if "ERROR" in ln or "Error" in ln]
    text = (errors or lines or [f"exit code {r.returncode}"])[-1]
    return text[:300]


def _converter(saved: Path):
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    return tf, conv


def _fp32_bytes(model) -> bytes:
    if "fp32_bytes" not in model.cache:
        _, conv = _converter(saved_model(model))
        model.cache["fp32_bytes"] = conv.convert()
    return model.cache["fp32_bytes"]


def graph_ops(tflite_bytes: bytes) -> tuple[list[dict], dict[int, str], list[int]]:
    """(ops with op_name/inputs/outputs, tensor index -> name, output tensor indices) of a .tflite."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=tflite_bytes)
    names = {t["index"]: t["name"] for t in it.get_tensor_details()}
    return it._get_ops_details(), names, [o["index"] for o in it.get_output_details()]


def float_tail(tflite_bytes: bytes) -> list[dict]:
    """The ops the keep-float-tail policy leaves in float, each with the reason.

    Everything computed from a softmax (soft-argmax, RoI sampling and its
    fixed ramp convolutions, coordinate decoding), everything after the last
    learned layer on every path, and the learned layer that produces a model
    output directly (a coordinate regressor's last FC).
    """
    ops, names, outputs = graph_ops(tflite_bytes)
    consumers: dict[int, list[int]] = {}
    for i, op in enumerate(ops):
        for t in op["inputs"]:
            consumers.setdefault(int(t), []).append(i)
    reaches_weighted: dict[int, bool] = {}

    def downstream_weighted(i: int) -> bool:
        if i in reaches_weighted:
            return reaches_weighted[i]
        reaches_weighted[i] = False
        hit = any(ops[j]["op_name"] in WEIGHTED_OPS or downstream_weighted(j) for t in ops[i]["outputs"] for j in consumers.get(int(t), []))
        reaches_weighted[i] = hit
        return hit

    def feeds_output_directly(i: int) -> bool:
        for t in ops[i]["outputs"]:
            if int(t) in outputs:
                return True
            for j in consumers.get(int(t), []):
                if ops[j]["op_name"] in SHAPE_OPS and feeds_output_directly(j):
                    return True
        return False

    producers = {int(t): i for i, op in enumerate(ops) for t in op["outputs"]}
    from_softmax: dict[int, bool] = {}

    def computed_from_softmax(i: int) -> bool:
        if i not in from_softmax:
            from_softmax[i] = False
            from_softmax[i] = ops[i]["op_name"] in FRAGILE_OPS or any(
                int(t) in producers and computed_from_softmax(producers[int(t)]) for t in ops[i]["inputs"])
        return from_softmax[i]

    tail = []
    for i, op in enumerate(ops):
        name = op["op_name"]
        if computed_from_softmax(i):
            tail.append({"op": name, "index": i, "tensor": names[int(op["outputs"][0])], "why": "computed from a softmax (soft-argmax / coordinate math)"})
        elif name in WEIGHTED_OPS:
            if feeds_output_directly(i):
                tail.append({"op": name, "index": i, "tensor": names[int(op["outputs"][0])], "why": "output layer (coordinate regression)"})
        elif not downstream_weighted(i):
            tail.append({"op": name, "index": i, "tensor": names[int(op["outputs"][0])], "why": "after the last learned layer (soft-argmax / coordinate math)"})
    return tail


def _quantize_int8(model, opts: ConvertOptions, calib) -> tuple[bytes, list[dict]]:
    from tensorflow.lite.python import convert as tfl_convert

    tf, conv = _converter(saved_model(model))
    inputs = calib.inputs.transpose(0, 2, 3, 1).astype(np.float32)  # SavedModel takes NHWC

    def representative():
        for x in inputs:
            yield [x[None]]

    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    conv._experimental_calibrate_only = True
    calibrated = conv.convert()
    tail = float_tail(_fp32_bytes(model)) if opts.policy.keep_float_tail else []
    denylist = sorted({t["tensor"] for t in tail})
    try:
        quantized = tfl_convert.mlir_quantize(
            calibrated,
            fully_quantize=True,
            input_data_type=tf.int8,
            output_data_type=tf.float32,
            denylisted_ops=list(opts.policy.extra_float_ops) or None,
            denylisted_nodes=denylist or None,
        )
    except Exception as exc:  # noqa: BLE001 - the MLIR quantiser raises ConverterError & co
        raise ConversionError(f"int8 quantisation of {model.name} failed ({str(exc).strip().splitlines()[0][:300]})") from None
    from .tflite_edit import float_outputs

    return float_outputs(quantized), tail


def _float_ops(tflite_bytes: bytes) -> list[dict]:
    """Ops that run in float in a quantised graph (measured from tensor types, not assumed)."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=tflite_bytes)
    dtypes = {t["index"]: t["dtype"] for t in it.get_tensor_details()}
    out = []
    for i, op in enumerate(it._get_ops_details()):
        if op["op_name"] in ("QUANTIZE", "DEQUANTIZE"):
            continue
        outs = [dtypes.get(int(t)) for t in op["outputs"]]
        if any(d == np.float32 for d in outs):
            out.append({"op": op["op_name"], "index": i})
    return out


def _op_counts(tflite_bytes: bytes) -> dict[str, int]:
    ops, _, _ = graph_ops(tflite_bytes)
    counts: dict[str, int] = {}
    for op in ops:
        counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def _tensor_infos(details: list[dict], names: list[str]) -> list[TensorInfo]:
    out = []
    for i, d in enumerate(details):
        scale, zp = d["quantization"]
        shape = [int(s) for s in d["shape"]]
        out.append(TensorInfo(
            name=d["name"],
            shape=shape,
            dtype=np.dtype(d["dtype"]).name,
            layout="NHWC" if len(shape) == 4 else None,
            quantization={"scale": float(scale), "zero_point": int(zp)} if scale else None,
            description=names[i] if i < len(names) else None,
        ))
    return out


def _write(model, opts: ConvertOptions, target, data: bytes, quantization: dict, extra_summary: dict) -> ConversionResult:
    from ai_edge_litert.interpreter import Interpreter

    from devicekit.fsutil import atomic_write_bytes

    path = opts.out_dir / f"{model.name}.{target.name}{target.suffix}"
    if not opts.extra.get("keep_names"):
        from .tflite_edit import strip_names

        data = strip_names(data)
    atomic_write_bytes(path, data)
    it = Interpreter(model_content=data)
    manifest = base_manifest(
        model, target,
        _tensor_infos(it.get_input_details(), ["image"]),
        _tensor_infos(it.get_output_details(), model.output_names),
        quantization, TOOLS,
    )
    finalize(manifest, path)
    summary = {"size_bytes": len(data), "op_counts": _op_counts(data), **extra_summary}
    return ConversionResult(target.name, path, manifest, summary=summary)


def _run(precision: str):
    def run(model, opts: ConvertOptions, calib) -> ConversionResult:
        from .base import TARGETS

        target = TARGETS[f"tflite-{precision}"]
        t0 = time.perf_counter()
        if opts.backend == "litert-torch":
            from .litert_torch_backend import convert_with_litert_torch

            data = convert_with_litert_torch(model, calib, precision)
            quant = {"mode": precision, "backend": "litert-torch", "version": model.cache.get("litert_torch_version")}
            extra = {"backend": "litert-torch"}
            if precision == "int8":
                floats = [{**f, "why": "not annotated by the PT2E quantiser"} for f in _float_ops(data)]
                quant.update({"policy": "pt2e (unannotated ops stay float)", "calibration": calib.to_json(), "float_ops": floats})
                extra.update({"float_ops": quant["float_ops"], "calibration": calib.to_json()})
        elif opts.backend != "onnx2tf":
            raise UsageError(f"unknown --backend {opts.backend!r} (known: onnx2tf, litert-torch)")
        elif precision == "fp32":
            data, quant, extra = _fp32_bytes(model), {"mode": "fp32"}, {}
        elif precision == "fp16":
            tf, conv = _converter(saved_model(model))
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.target_spec.supported_types = [tf.float16]
            data, quant, extra = conv.convert(), {"mode": "fp16-weights"}, {}
        else:
            data, tail = _quantize_int8(model, opts, calib)
            float_ops = _float_ops(data)
            quant = {
                "mode": "int8",
                "policy": opts.policy.name,
                "calibration": calib.to_json(),
                "float_ops": [{**f, "why": _why(f, tail)} for f in float_ops],
            }
            extra = {"float_ops": quant["float_ops"], "policy": opts.policy.name, "calibration": calib.to_json()}
        res = _write(model, opts, target, data, quant, extra)
        res.seconds = time.perf_counter() - t0
        return res

    return run


def _why(f: dict, tail: list[dict]) -> str:
    for t in tail:
        if t["op"] == f["op"]:
            return t["why"]
    return "no int8 kernel (left in float by the quantiser)"


register_target("tflite-fp32", family="tflite", suffix=".tflite", precision="fp32", needs_calibration=False,
                description="TFLite, float32 weights and activations")(_run("fp32"))
register_target("tflite-fp16", family="tflite", suffix=".tflite", precision="fp16", needs_calibration=False,
                description="TFLite, float16 weights (dequantised at load or run on GPU in fp16)")(_run("fp16"))
register_target("tflite-int8", family="tflite", suffix=".tflite", precision="int8", needs_calibration=True,
                description="TFLite, full-integer int8 calibrated on real images; float tail per policy")(_run("int8"))
