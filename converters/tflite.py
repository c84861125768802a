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
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from devicekit.errors import ConversionError, UsageError
from devicekit.manifest import TensorInfo, finalize
from devicekit.registry import TARGETS, attach_target

from .base import ConversionResult, ConvertOptions, TFLiteOptions, base_manifest
from .onnx_export import export_onnx
from .tflite_int8 import graph_ops, quantize_int8

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


def _work_dir(model) -> Path:
    """One temporary folder per loaded model for the ONNX export and the SavedModels (removed with it)."""
    if "_tflite_tmp" not in model.cache:
        model.cache["_tflite_tmp"] = tempfile.TemporaryDirectory(prefix="devicekit-tflite-")
    return Path(model.cache["_tflite_tmp"].name)


def saved_model(model, int8: bool = False) -> Path:
    """ONNX -> graph rewrites -> SavedModel with onnx2tf, once per loaded model and graph variant.

    The int8 variant also runs the int8-only rewrites (onnx_passes.INT8_PASSES);
    when none applies it is the float SavedModel. The rewrites' notes are kept
    in ``model.cache["graph_rewrites"]`` for the manifest.
    """
    from .onnx_passes import INT8_PASSES, PASSES, run_passes

    key = "saved_model_int8" if int8 else "saved_model"
    if key in model.cache:
        return model.cache[key]
    work = _work_dir(model)
    rewrites = model.cache.setdefault("graph_rewrites", {})
    if "float" not in rewrites:  # both variants from the pristine export (onnx2tf rewrites its input)
        export_onnx(model, work / "export.onnx")
        rewrites["float"] = run_passes(work / "export.onnx", work / "float.onnx", PASSES)
        rewrites["int8"] = run_passes(work / "export.onnx", work / "int8.onnx", PASSES + INT8_PASSES)
    variant = "int8" if int8 and len(rewrites["int8"]) > len(rewrites["float"]) else "float"
    if variant == "float" and "saved_model" in model.cache:
        model.cache[key] = model.cache["saved_model"]  # no int8-only rewrite applied: the same graph
        return model.cache[key]
    np.save(work / ONNX2TF_SAMPLE, np.zeros((20, 128, 128, 3), np.float32))
    # onnx2tf's CLI through a wrapper that stops Keras writing every weight as JSON (see onnx2tf_run)
    out = work / f"saved-{variant}"
    shutil.copyfile(work / f"{variant}.onnx", work / f"onnx2tf-{variant}.onnx")  # onnx2tf rewrites its input
    cmd = [sys.executable, "-m", "devicekit.converters.onnx2tf_run", "-i", f"onnx2tf-{variant}.onnx", "-o", out.name, "-n"]
    r = subprocess.run(cmd, cwd=work, env=_offline_env(), capture_output=True, text=True, timeout=3600)
    if r.returncode not in (0, 127) or (r.returncode == 0 and not (out / "saved_model.pb").exists()):
        # onnx2tf as it is, without the wrapper's NHWC add (its layout guesses elsewhere may rely on the NCHW one)
        shutil.copyfile(work / f"{variant}.onnx", work / f"onnx2tf-{variant}.onnx")
        shutil.rmtree(out, ignore_errors=True)
        r = subprocess.run(cmd, cwd=work, env={**_offline_env(), "DEVICEKIT_ONNX2TF_NCHW_ADD": "1"}, capture_output=True,
                           text=True, timeout=3600)
        rewrites[variant] = rewrites[variant] + ["onnx2tf's NCHW residual adds kept (its conversion failed with them in NHWC)"]
    if r.returncode == 127:
        from devicekit.errors import EnvironmentMissing

        raise EnvironmentMissing("onnx2tf is not installed", hint="pip install 'devicekit[convert]'")
    if r.returncode != 0 or not (out / "saved_model.pb").exists():
        raise ConversionError(f"onnx2tf failed on {model.name}: {_subprocess_reason(r)}")
    model.cache[key] = out
    if variant == "float":
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


def _fp32_bytes(model, int8_variant: bool = False) -> bytes:
    """The float32 flatbuffer of the float graph (or of the int8 graph variant, whose node names int8 denylists)."""
    key = "fp32_bytes_int8_variant" if int8_variant else "fp32_bytes"
    if key not in model.cache:
        saved = saved_model(model, int8=int8_variant)
        if int8_variant and saved == model.cache.get("saved_model"):
            return _fp32_bytes(model)
        _, conv = _converter(saved)
        model.cache[key] = conv.convert()
    return model.cache[key]


def _float_ops(tflite_bytes: bytes, regions: list[dict] | None = None) -> list[dict]:
    """Ops that run in float in a quantised graph (measured from tensor types, not assumed), each with why.

    ``regions`` are the int8 search's float regions (their ``nodes`` are output tensor names).
    """
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=tflite_bytes)
    details = {t["index"]: t for t in it.get_tensor_details()}
    region_of = {n: r for r in regions or [] for n in r.get("nodes", [])}
    out = []
    for i, op in enumerate(it._get_ops_details()):
        if op["op_name"] in ("QUANTIZE", "DEQUANTIZE"):
            continue
        outs = [details[int(t)] for t in op["outputs"] if int(t) in details]
        if any(d["dtype"] == np.float32 for d in outs):
            r = next((region_of[d["name"]] for d in outs if d["name"] in region_of), None)
            why = f"{r['why']} (region {r['region']}, kept float by the search)" if r else "no int8 kernel (left float by the quantiser)"
            out.append({"op": op["op_name"], "index": i, "why": why})
    return out


def integer_share(path: Path) -> dict:
    """The share of MACs that run in integer ops, and of weight bytes stored as integers (devicekit check's reader)."""
    from devicekit.check.graph import weight_tensor
    from devicekit.check.int8 import int8_facts
    from devicekit.modelfile import read_model

    facts = read_model(path)
    info = int8_facts(facts)
    weights = [weight_tensor(facts, op) for op in facts.ops]
    consts = {t.index: t for t in weights if t is not None and t.const}
    total = sum(t.const_bytes for t in consts.values())
    integer = sum(t.const_bytes for t in consts.values() if t.dtype in ("int8", "uint8", "int4"))
    return {"int8_mac_share": round(1.0 - info["float_macs_share"], 4),
            "int8_weight_share": round(integer / total, 4) if total else 1.0}


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
    if not (opts.resolved.get(target.name) or TFLiteOptions()).keep_names:
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
            data, quant, extra = _fp32_bytes(model), {"mode": "fp32", "graph_rewrites": model.cache["graph_rewrites"]["float"]}, {}
        elif precision == "fp16":
            tf, conv = _converter(saved_model(model))
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.target_spec.supported_types = [tf.float16]
            data, quant, extra = conv.convert(), {"mode": "fp16-weights"}, {}
        else:
            q = quantize_int8(model, opts, calib, _converter(saved_model(model, int8=True)), _fp32_bytes(model, int8_variant=True))
            data = q.data
            quant = {
                "mode": "int8",
                "policy": opts.policy.name,
                "calibration": calib.to_json(),
                "float_ops": _float_ops(data, q.float_regions),
                "float_regions": q.float_regions,
                "search": {"trials": q.search, "notes": q.notes, "score": q.score, "passed": q.passed},
                "graph_rewrites": model.cache.get("graph_rewrites", {}).get("int8", []),
            }
            extra = {"float_ops": quant["float_ops"], "float_regions": q.float_regions, "policy": opts.policy.name,
                     "calibration": calib.to_json(), "search_notes": q.notes}
        res = _write(model, opts, target, data, quant, extra)
        if precision == "int8":
            res.summary.update(integer_share(res.artifact))
            if opts.backend == "onnx2tf":
                res.float_reference = _fp32_bytes(model, int8_variant=True)
        res.seconds = time.perf_counter() - t0
        return res

    return run


attach_target("tflite-fp32", _run("fp32"), options=TFLiteOptions)
attach_target("tflite-fp16", _run("fp16"), options=TFLiteOptions)
attach_target("tflite-int8", _run("int8"), options=TFLiteOptions)
