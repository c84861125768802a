"""PyTorch/ONNX -> TFLite through onnx2tf, with int8 under a quantisation policy.

Steps, declared per target in ``STEPS``: export ONNX (a copy for ONNX
sources) and the graph passes -> onnx2tf to a TensorFlow SavedModel (NHWC,
no TRANSPOSE for layout-agnostic graphs) -> TFLiteConverter for fp32 / fp16,
or calibrate on real images and quantise with the MLIR quantiser for int8,
keeping in float only what the search measures necessary -> write with the
manifest -> (int8) the integer shares. The per-model graphs are made once
and shared by the three targets (``Graphs``).

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

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


@dataclass
class Graphs:
    """What the TFLite steps make from one loaded model, once, shared by its three targets.

    Graph variants: ``float`` (onnx_passes.PASSES) and ``int8`` (PASSES + INT8_PASSES; the same graph as float
    when no int8-only rewrite applies). Held in ``model.cache["tflite"]``; the folder goes with the model.
    """

    tmp: tempfile.TemporaryDirectory
    rewrites: dict[str, list[str]] = field(default_factory=dict)  # variant -> the rewrites applied (for the manifest)
    saved: dict[str, Path] = field(default_factory=dict)  # variant -> onnx2tf's SavedModel
    fp32: dict[str, bytes] = field(default_factory=dict)  # variant -> the float32 flatbuffer
    int8_distinct: bool = False  # an int8-only rewrite applied: the int8 variant is its own graph

    @property
    def work(self) -> Path:
        return Path(self.tmp.name)

    @classmethod
    def of(cls, model) -> "Graphs":
        if "tflite" not in model.cache:
            model.cache["tflite"] = cls(tempfile.TemporaryDirectory(prefix="devicekit-tflite-"))
        return model.cache["tflite"]

    def variant(self, int8: bool) -> str:
        """``int8`` only when an int8-only rewrite applied; else the float graph serves both."""
        return "int8" if int8 and self.int8_distinct else "float"


def rewrite_graphs(model) -> Graphs:
    """Step 1: export ONNX once, then run the graph passes for both variants from the pristine export."""
    from .onnx_passes import INT8_PASSES, PASSES, run_passes

    g = Graphs.of(model)
    if not g.rewrites:  # onnx2tf rewrites its input: both variants come from the untouched export
        export_onnx(model, g.work / "export.onnx")
        g.rewrites["float"] = run_passes(g.work / "export.onnx", g.work / "float.onnx", PASSES)
        g.rewrites["int8"] = run_passes(g.work / "export.onnx", g.work / "int8.onnx", PASSES + INT8_PASSES)
        g.int8_distinct = len(g.rewrites["int8"]) > len(g.rewrites["float"])
    return g


def saved_model(model, int8: bool = False) -> Path:
    """Step 2: the graph variant -> TensorFlow SavedModel with onnx2tf (once per variant)."""
    g = rewrite_graphs(model)
    variant = g.variant(int8)
    if variant in g.saved:
        return g.saved[variant]
    work = g.work
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
        g.rewrites[variant] = g.rewrites[variant] + ["onnx2tf's NCHW residual adds kept (its conversion failed with them in NHWC)"]
    if r.returncode == 127:
        from devicekit.errors import EnvironmentMissing

        raise EnvironmentMissing("onnx2tf is not installed", hint="pip install 'devicekit[convert]'")
    if r.returncode != 0 or not (out / "saved_model.pb").exists():
        raise ConversionError(f"onnx2tf failed on {model.name}: {_subprocess_reason(r)}")
    g.saved[variant] = out
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
    g = rewrite_graphs(model)
    variant = g.variant(int8_variant)
    if variant not in g.fp32:
        _, conv = _converter(saved_model(model, int8=variant == "int8"))
        g.fp32[variant] = conv.convert()
    return g.fp32[variant]


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


@dataclass
class Job:
    """One target's conversion, handed from step to step (the steps of its precision, ``STEPS``)."""

    model: Any
    opts: ConvertOptions
    calib: Any
    target: Any
    data: bytes = b""  # the flatbuffer
    quant: dict = field(default_factory=dict)  # the manifest's quantization block
    summary: dict = field(default_factory=dict)  # extra facts for the convert report
    result: ConversionResult | None = None


def fp32_flatbuffer(job: Job) -> None:
    job.data = _fp32_bytes(job.model)
    job.quant = {"mode": "fp32", "graph_rewrites": Graphs.of(job.model).rewrites["float"]}


def fp16_flatbuffer(job: Job) -> None:
    tf, conv = _converter(saved_model(job.model))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_types = [tf.float16]
    job.data, job.quant = conv.convert(), {"mode": "fp16-weights"}


def int8_flatbuffer(job: Job) -> None:
    """Calibrate, search the float regions the gate needs, quantise (converters/tflite_int8.py)."""
    model, opts, calib = job.model, job.opts, job.calib
    q = quantize_int8(model, opts, calib, _converter(saved_model(model, int8=True)), _fp32_bytes(model, int8_variant=True))
    job.data = q.data
    job.quant = {
        "mode": "int8", "policy": opts.policy.name, "calibration": calib.to_json(),
        "float_ops": _float_ops(q.data, q.float_regions), "float_regions": q.float_regions,
        "search": {"trials": q.search, "notes": q.notes, "score": q.score, "passed": q.passed},
        "graph_rewrites": Graphs.of(model).rewrites.get("int8", []),
    }
    job.summary = {"float_ops": job.quant["float_ops"], "float_regions": q.float_regions, "policy": opts.policy.name,
                   "calibration": calib.to_json(), "search_notes": q.notes}


def litert_torch_flatbuffer(job: Job) -> None:
    """The optional backend: litert-torch in its own venv (converters/litert_torch_backend.py)."""
    from .litert_torch_backend import convert_with_litert_torch

    precision = job.target.precision
    job.data = convert_with_litert_torch(job.model, job.calib, precision)
    job.quant = {"mode": precision, "backend": "litert-torch", "version": job.model.cache.get("litert_torch_version")}
    job.summary = {"backend": "litert-torch"}
    if precision == "int8":
        floats = [{**f, "why": "not annotated by the PT2E quantiser"} for f in _float_ops(job.data)]
        job.quant.update({"policy": "pt2e (unannotated ops stay float)", "calibration": job.calib.to_json(), "float_ops": floats})
        job.summary.update({"float_ops": floats, "calibration": job.calib.to_json()})


def write(job: Job) -> None:
    job.result = _write(job.model, job.opts, job.target, job.data, job.quant, job.summary)


def integer_shares(job: Job) -> None:
    assert job.result is not None
    job.result.summary.update(integer_share(job.result.artifact))
    if job.opts.backend == "onnx2tf":
        job.result.float_reference = _fp32_bytes(job.model, int8_variant=True)  # judged against too


# The conversion of each target, as data: (backend, precision) -> its steps in order. Each step takes the Job and
# fills what the next needs; the graphs (ONNX export, rewrites, SavedModels, fp32 flatbuffers) are made once per
# loaded model and shared (Graphs).
STEPS: dict[tuple[str, str], tuple[Callable[[Job], None], ...]] = {
    ("onnx2tf", "fp32"): (fp32_flatbuffer, write),
    ("onnx2tf", "fp16"): (fp16_flatbuffer, write),
    ("onnx2tf", "int8"): (int8_flatbuffer, write, integer_shares),
    ("litert-torch", "fp32"): (litert_torch_flatbuffer, write),
    ("litert-torch", "fp16"): (litert_torch_flatbuffer, write),
    ("litert-torch", "int8"): (litert_torch_flatbuffer, write, integer_shares),
}


def _run(precision: str):
    def run(model, opts: ConvertOptions, calib) -> ConversionResult:
        steps = STEPS.get((opts.backend, precision))
        if steps is None:
            raise UsageError(f"unknown --backend {opts.backend!r} (known: {', '.join(sorted({b for b, _ in STEPS}))})")
        t0 = time.perf_counter()
        job = Job(model, opts, calib, TARGETS[f"tflite-{precision}"])
        for step in steps:
            step(job)
        assert job.result is not None
        job.result.seconds = time.perf_counter() - t0
        return job.result

    return run


attach_target("tflite-fp32", _run("fp32"), options=TFLiteOptions)
attach_target("tflite-fp16", _run("fp16"), options=TFLiteOptions)
attach_target("tflite-int8", _run("int8"), options=TFLiteOptions)
