"""PyTorch -> CoreML ML Program (.mlpackage): coreml-fp16, coreml-int8, coreml-w8a8.

Steps, in order: capture the graph (``torch.export`` + ``run_decompositions({})``,
``torch.jit.trace`` as the fallback) -> ``ct.convert`` to an ``mlprogram`` for
the deployment target (iOS17 unless ``CoreMLOptions.deployment_target``), fp16
compute -> int8 weights / palettisation / W8A8 (activation ranges measured in
the MIL interpreter, see ``coreml_quant``) -> metadata -> save atomically ->
manifest.

Input: an ``ImageType`` so that Vision and ``CVPixelBuffer`` feed the model
directly, with ``scale = 1/std`` and ``bias = -mean/std`` from the input spec
and the spec's colour order (RGB, BGR, GRAYSCALE). CoreML's ImageType has one
scale for all channels: when the spec's std differs per channel the input
falls back to a plain tensor (normalised NCHW float32), and the summary says
so. ``coreml_input="tensor"`` asks for the tensor input anyway.

Target options (``CoreMLOptions``, from ``ConvertOptions.target_options``): ``deployment_target`` (iOS16,
iOS17, iOS18), ``coreml_input`` (image | tensor), ``palettize`` (4, 6, 8:
k-means lookup-table weights for coreml-fp16/-int8), ``compute_precision``
(fp16 | fp32).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from devicekit.errors import ConversionError, UnsupportedOpError, UsageError, first_line
from devicekit.manifest import TensorInfo, finalize
from devicekit.registry import TARGETS, attach_target

from . import base
from .base import ConversionResult, ConvertOptions, base_manifest
from .coreml_graph import is_learned, reaches_learned

TOOLS = ("coremltools",)
DEPLOYMENT_TARGETS = ("iOS16", "iOS17", "iOS18")
PALETTE_BITS = (4, 6, 8)
COLOR_LAYOUTS = {"rgb": "RGB", "bgr": "BGR", "gray": "GRAYSCALE"}
# Known ops coremltools cannot convert, with the rewrite that works (op name as torch spells it).
FIX_HINTS = {
    "roi_align": "write RoIAlign with grid_sample or devicekit.zoo.layers.roi_crop (torchvision's roi_align has no CoreML conversion)",
    "roi_pool": "write the RoI crop with grid_sample or devicekit.zoo.layers.roi_crop",
    "nms": "run non-max suppression in app code (or use a fixed-size top-k)",
    "deform_conv2d": "replace deformable convolution with a plain convolution",
}


@dataclass(frozen=True)
class CoreMLOptions:
    """coreml-* targets' own options, validated when made (before any conversion starts)."""

    deployment_target: str = "iOS17"
    coreml_input: str = "image"  # image (CVPixelBuffer / Vision) | tensor
    palettize: int | None = None  # 4, 6, 8: k-means lookup-table weights (coreml-fp16 / -int8)
    compute_precision: str = "fp16"

    def __post_init__(self):
        if self.deployment_target not in DEPLOYMENT_TARGETS:
            raise UsageError(f"--deployment-target must be one of {', '.join(DEPLOYMENT_TARGETS)}, got {self.deployment_target!r}")
        if self.coreml_input not in ("image", "tensor"):
            raise UsageError(f"--coreml-input must be image or tensor, got {self.coreml_input!r}")
        if self.palettize is not None and self.palettize not in PALETTE_BITS:
            raise UsageError(f"--palettize must be one of {', '.join(map(str, PALETTE_BITS))}, got {self.palettize!r}")
        if self.compute_precision not in ("fp16", "fp32"):
            raise UsageError(f"--compute-precision must be fp16 or fp32, got {self.compute_precision!r}")

    def for_target(self, name: str) -> "CoreMLOptions":
        if self.palettize is not None and name == "coreml-w8a8":
            raise UsageError("--palettize does not combine with coreml-w8a8 (int8 weights); use it with coreml-fp16 or coreml-int8")
        return self


def input_type(spec, kind: str):
    """(ct input type, manifest TensorInfo, note or None) for the spec."""
    import coremltools as ct

    mean, std = spec.per_channel(spec.mean), spec.per_channel(spec.std)
    note = None
    if kind == "image" and len(set(std)) > 1:
        kind = "tensor"
        note = (
            f"std differs per channel ({std}): CoreML's ImageType takes one scale, so the input is a plain "
            "normalised tensor; the app normalises ((pixel - mean) / std) before predict"
        )
    if kind == "tensor":
        t = ct.TensorType(name="image", shape=spec.shape, dtype=np.float32)
        info = TensorInfo("image", list(spec.shape), "float32", "NCHW", None, "normalised image, (pixel - mean) / std")
        return t, info, note
    layout = COLOR_LAYOUTS[spec.color]
    scale = 1.0 / std[0]
    bias = [-m / s for m, s in zip(mean, std)]
    t = ct.ImageType(
        name="image", shape=spec.shape, scale=scale, bias=bias[0] if layout == "GRAYSCALE" else bias, color_layout=getattr(ct.colorlayout, layout)
    )
    n, c, h, w = spec.shape
    info = TensorInfo(
        "image",
        [n, h, w, c],
        "uint8",
        "NHWC",
        None,
        f"CoreML image ({layout}, CVPixelBuffer); scale {scale:.6g} and bias {[round(b, 6) for b in bias]} applied in the model",
    )
    return t, info, note


def capture(model):
    """torch.export + run_decompositions({}); torch.jit.trace if export fails. Returns (program, how)."""
    import torch

    x = torch.zeros(model.spec.shape)
    try:
        return torch.export.export(model.module, (x,)).run_decompositions({}), "torch.export"
    except Exception as exc:  # noqa: BLE001 - fall back to tracing for modules export cannot capture
        export_error = exc
    try:
        with torch.no_grad():
            return torch.jit.trace(model.module, (x,), check_trace=False), "torch.jit.trace"
    except Exception as exc:  # noqa: BLE001
        raise ConversionError(
            f"cannot capture {model.name} for CoreML: torch.export failed ({first_line(export_error, 200)}) "
            f"and torch.jit.trace failed ({first_line(exc, 200)})"
        ) from None


@contextlib.contextmanager
def quiet():
    """Hide coremltools' tqdm progress bars and info logs (the CLI owns stderr); errors still raise."""
    import io
    import logging

    log = logging.getLogger("coremltools")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        log.setLevel(level)


def tail_selector(kept: list):
    """op_selector for FP16ComputePrecision: fp16 everywhere except the float tail.

    The tail is every op from which no learned layer (``is_learned``: conv,
    linear, matmul, but not the all-ones ramp sums) can be reached:
    soft-argmax, RoI sampling and coordinate decoding, as in the TFLite
    keep-float-tail policy. Ops coremltools does not offer for fp16
    (``is_valid_op``) stay fp32 anyway.
    """

    def select(op) -> bool:
        if is_learned(op) or reaches_learned(op):
            return True
        if op.op_type != "const":
            kept.append(op.op_type)
        return False

    return select


def _convert(model, program, inputs, o: dict, keep_float_tail: bool = False, kept: list | None = None):
    import coremltools as ct

    from .coreml_ops import register

    register()

    names = list(model.output_names)
    outputs = [ct.TensorType(name=n, dtype=np.float32) for n in names] if names else None
    prec = ct.precision.FLOAT16 if o.compute_precision == "fp16" else ct.precision.FLOAT32
    if prec == ct.precision.FLOAT16 and keep_float_tail:
        prec = ct.transform.FP16ComputePrecision(op_selector=tail_selector(kept if kept is not None else []))
    try:
        with quiet():
            return ct.convert(
                program,
                inputs=[inputs],
                outputs=outputs,
                convert_to="mlprogram",
                minimum_deployment_target=getattr(ct.target, o.deployment_target),
                compute_precision=prec,
                skip_model_load=True,
            )
    except Exception as exc:  # noqa: BLE001 - coremltools raises many kinds; each becomes one typed line
        raise unsupported_op_error(model, exc) from None


def unsupported_op_error(model, exc: BaseException):
    """ct.convert's exception -> UnsupportedOpError naming the op and layer, or ConversionError."""
    text = str(exc)
    m = (
        re.search(r"Unsupported fx node \S+, kind ([\w.:]+)", text)
        or re.search(r"op '([\w.:]+)' not implemented", text)
        or re.search(r"convert function for op '([\w.:]+)'", text)
    )
    if not m:
        return ConversionError(f"coremltools could not convert {model.name} ({first_line(exc)})")
    op = m.group(1).split("::")[-1].split(".")[0]
    layer = _layer_of(model, op)
    hint = FIX_HINTS.get(
        op.rstrip("_"), "rewrite the layer with ops CoreML supports, or register a composite op with coremltools' @register_torch_op"
    )
    return UnsupportedOpError(op, layer, "coreml", hint)


def _layer_of(model, op: str) -> str | None:
    """The module path of the first node calling ``op`` (from torch.export's nn_module_stack)."""
    try:
        import torch

        ep = torch.export.export(model.module, (torch.zeros(model.spec.shape),))
    except Exception:  # noqa: BLE001 - best effort: the op name alone is still useful
        return None
    for n in ep.graph.nodes:
        name = str(getattr(n.target, "__name__", n.target))
        if n.op == "call_function" and op in name:
            stack = n.meta.get("nn_module_stack") or {}
            if stack:
                path, cls = list(stack.values())[-1]
                return f"{path or '(top)'} ({getattr(cls, '__name__', cls)})"
    return None


def set_metadata(mlmodel, model, target: str, o: "CoreMLOptions", input_note: str | None) -> None:
    import json

    from devicekit import __version__

    info = model.info
    spec = model.spec
    mlmodel.author = "devicekit"
    mlmodel.license = str(info.get("license", "see the model's source"))
    mlmodel.version = f"devicekit {__version__}"
    lm = info.get("landmarks")
    mlmodel.short_description = (
        f"{model.name} ({info.get('task', 'model')}{f', {lm} landmarks' if lm else ''}), {target}, converted by devicekit from {model.source}"
    )
    meta = {
        "devicekit.version": __version__,
        "devicekit.target": target,
        "devicekit.model": model.name,
        "devicekit.source": model.source,
        "devicekit.task": str(info.get("task")),
        "devicekit.landmarks": str(lm or 0),
        "devicekit.layout": str(info.get("layout") or ""),
        "devicekit.coords": str(info.get("coords") or ""),
        "devicekit.color": spec.color,
        "devicekit.mean": json.dumps(spec.per_channel(spec.mean)),
        "devicekit.std": json.dumps(spec.per_channel(spec.std)),
        "devicekit.normalization": "(pixel - mean) / std, pixels 0-255"
        + (" (applied inside the model)" if o.coreml_input == "image" and not input_note else ""),
        "devicekit.input": o.coreml_input if not input_note else "tensor",
        "devicekit.deployment_target": o.deployment_target,
    }
    mlmodel.user_defined_metadata.update(meta)
    desc = mlmodel.input_description
    desc["image"] = "face crop, " + (f"{spec.color} image" if meta["devicekit.input"] == "image" else "normalised NCHW float32")
    for n in model.output_names:
        if n == "landmarks" and lm:
            mlmodel.output_description[n] = f"[1, {lm}, D] (x, y[, z]) in model-input pixels, pixel centres at i + 0.5, {info.get('layout')} order"
        elif n in mlmodel.output_description:
            mlmodel.output_description[n] = n


def save_atomic(mlmodel, path: Path) -> None:
    """Write the package into a temp dir beside ``path`` and swap it in (no half-written package on failure)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        staged = tmp / path.name
        mlmodel.save(str(staged))
        if path.exists():
            old = tmp / "old"
            path.rename(old)
        staged.rename(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def op_counts(path: Path) -> dict[str, int]:
    from devicekit.milref.program import load_program

    counts: dict[str, int] = {}
    for op in load_program(path).operations:
        if op.type != "const":
            counts[op.type] = counts.get(op.type, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def _outputs_info(path: Path, names: list[str]) -> list[TensorInfo]:
    from devicekit.milref.program import load_program

    prog = load_program(path)
    shapes = {}
    for op in prog.operations:
        for n, dtype, shape in op.outputs:
            shapes[n] = (dtype, shape)
    out = []
    for n in prog.outputs:
        dtype, shape = shapes.get(n, ("FLOAT32", ()))
        out.append(TensorInfo(n, list(shape), str(dtype).lower(), None, None, n))
    return out


@dataclass
class Job(base.Job):
    """A CoreML target's conversion: the steps pass the ML program along."""

    options: CoreMLOptions = field(default_factory=CoreMLOptions)
    mlmodel: Any = None
    program: Any = None  # the captured torch program (W8A8 calibrates on it)
    input_info: Any = None  # the manifest's input TensorInfo
    note: str | None = None  # why the input fell back to a tensor, if it did


def ml_program(job: Job) -> None:
    """Capture the graph (torch.export, jit.trace as the fallback) and convert it to an ML program."""
    model, o = job.model, job.options
    if not model.is_torch:
        raise UsageError(
            f"{job.target.name} converts PyTorch models; {model.source} is ONNX",
            hint="give the PyTorch source (zoo:NAME, .pt2, TorchScript or a state dict), or use a tflite target",
        )
    ct_input, job.input_info, job.note = input_type(model.spec, o.coreml_input)
    job.summary["notes"] = [job.note] if job.note else []
    job.quant = {
        "compute_precision": o.compute_precision,
        "deployment_target": o.deployment_target,
        "input": "tensor" if job.note else o.coreml_input,
    }
    job.program, job.summary["captured_with"] = capture(model)
    job.quant["mode"] = "fp16" if o.compute_precision == "fp16" else "fp32"
    kept: list[str] = []
    job.mlmodel = _convert(model, job.program, ct_input, o, job.opts.policy.keep_float_tail, kept)
    if kept:
        counts = {t: kept.count(t) for t in sorted(set(kept))}
        job.quant["fp32_tail_ops"] = {
            "count": len(kept),
            "ops": counts,
            "why": "after the last learned layer (soft-argmax, RoI crop, coordinate decoding; the "
            "all-ones ramp convolutions are box-sums, not learned layers), kept fp32 by the "
            "keep-float-tail policy: fp16 there cost 0.13 px on trained heatmap2s",
        }


def w8a8_activations(job: Job) -> None:
    """int8 weights and activations, ranges measured in the MIL interpreter on the calibration images."""
    from .coreml_quant import w8a8

    if job.calib is None:
        raise UsageError("coreml-w8a8 needs calibration images (--calib DIR)")
    set_metadata(job.mlmodel, job.model, job.target.name, job.options, job.note)  # the interpreter reads the normalisation
    with quiet():
        job.mlmodel, qinfo = w8a8(job.mlmodel, job.model, job.calib, job.opts, job.opts.gate.limits("w8a8"), job.program)
    job.quant.update(qinfo)


def int8_weights(job: Job) -> None:
    """int8 weights per channel, or the palettisation asked for (--palettize)."""
    from .coreml_quant import quantize_weights

    with quiet():
        job.mlmodel, qinfo = quantize_weights(job.mlmodel, job.options.palettize)
    job.quant.update(qinfo)


def palettize_if_asked(job: Job) -> None:
    if job.options.palettize:
        int8_weights(job)


def save(job: Job) -> None:
    """Metadata, the .mlpackage (atomically) and its manifest."""
    from devicekit.fsutil import path_size

    model, target = job.model, job.target
    set_metadata(job.mlmodel, model, target.name, job.options, job.note)
    path = job.opts.out_dir / f"{model.name}.{target.name}{target.suffix}"
    save_atomic(job.mlmodel, path)
    manifest = base_manifest(model, target, [job.input_info], _outputs_info(path, model.output_names), job.quant, TOOLS)
    finalize(manifest, path)
    summary = {
        "size_bytes": path_size(path),
        "op_counts": op_counts(path),
        "captured_with": job.summary["captured_with"],
        "input": job.quant["input"],
        "notes": job.summary["notes"],
    }
    job.result = ConversionResult(target.name, path, manifest, summary=summary)


# The conversion of each CoreML target, as data: precision -> its steps in order.
STEPS: dict[str, tuple[Callable[[Job], None], ...]] = {
    "fp16": (ml_program, palettize_if_asked, save),
    "int8": (ml_program, int8_weights, save),
    "w8a8": (ml_program, w8a8_activations, save),
}


def _run(precision: str):
    target_name = f"coreml-{precision}"

    def run(model, opts: ConvertOptions, calib) -> ConversionResult:
        from devicekit.errors import require_module

        require_module("coremltools")
        o = opts.resolved.get(target_name) or CoreMLOptions().for_target(target_name)
        return base.run_steps(Job(model, opts, calib, TARGETS[target_name], options=o), STEPS[precision])

    return run


attach_target("coreml-fp16", _run("fp16"), options=CoreMLOptions)
attach_target("coreml-int8", _run("int8"), options=CoreMLOptions)
attach_target("coreml-w8a8", _run("w8a8"), options=CoreMLOptions)


def verify_mlpackage(model, artifact: Path, inputs: np.ndarray) -> dict:
    """Run ``artifact`` with the MIL reference interpreter and compare with PyTorch on ``inputs`` (NCHW, normalised).

    On macOS, coremltools' ``predict`` runs as well and is compared with the
    interpreter (``predict_max_abs``). ``path`` says which ran.
    """
    import platform

    from devicekit.milref import MLPackageRunner
    from devicekit.runtime import match_outputs

    runner = MLPackageRunner(artifact)
    d, abs_err, ref_max, pred_err = [], 0.0, 0.0, None
    predictor = _mac_predictor(artifact) if platform.system() == "Darwin" else None
    for x in inputs:
        x = x[None].astype(np.float32)
        ref = model.run_torch(x)
        got = match_outputs(runner.run(x), ref)
        if model.info.get("landmarks"):
            d.append(np.linalg.norm(ref[0][..., :2] - got[0][..., :2], axis=-1).ravel())
        for r, g in zip(ref, got):
            abs_err = max(abs_err, float(np.max(np.abs(r - g))))
            ref_max = max(ref_max, float(np.max(np.abs(r))))
        if predictor is not None:  # both on the same (8-bit for image inputs) input
            p, q = predictor(runner, x)
            pred_err = max(pred_err or 0.0, max(float(np.max(np.abs(a - b))) for a, b in zip(p, q)))
    out = {
        "path": runner.path_kind + (" + coremltools predict (macOS)" if predictor else ""),
        "images": int(len(inputs)),
        "max_abs": abs_err,
        "max_rel": abs_err / ref_max if ref_max else 0.0,
    }
    if d:
        dd = np.concatenate(d)
        out.update({"mean_px": float(dd.mean()), "max_px": float(dd.max())})
    if pred_err is not None:
        out["predict_vs_interpreter_max_abs"] = pred_err
    return out


def _mac_predictor(artifact: Path):  # pragma: no cover - needs macOS (MLModel.predict)
    import coremltools as ct

    ml = ct.models.MLModel(str(artifact))

    def predict(runner, x):
        if runner.mean is not None:
            from PIL import Image

            px = np.clip(np.round(x * runner.std + runner.mean), 0, 255).astype(np.uint8)[0].transpose(1, 2, 0)
            img = Image.fromarray(px[..., 0] if px.shape[2] == 1 else px)
            res, interp = ml.predict({"image": img}), runner.run_pixels(px.transpose(2, 0, 1)[None].astype(np.float32))
        else:
            res, interp = ml.predict({"image": x}), runner.run(x)
        return [np.asarray(res[n], np.float32) for n in runner.program.outputs], interp

    return predict
