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
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from devicekit.errors import ConversionError, UnsupportedOpError, UsageError, first_line
from devicekit.manifest import TensorInfo, finalize
from devicekit.registry import TARGETS, attach_target

from .base import ConversionResult, ConvertOptions, base_manifest

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
        note = (f"std differs per channel ({std}): CoreML's ImageType takes one scale, so the input is a plain "
                "normalised tensor; the app normalises ((pixel - mean) / std) before predict")
    if kind == "tensor":
        t = ct.TensorType(name="image", shape=spec.shape, dtype=np.float32)
        info = TensorInfo("image", list(spec.shape), "float32", "NCHW", None, "normalised image, (pixel - mean) / std")
        return t, info, note
    layout = COLOR_LAYOUTS[spec.color]
    scale = 1.0 / std[0]
    bias = [-m / s for m, s in zip(mean, std)]
    t = ct.ImageType(name="image", shape=spec.shape, scale=scale, bias=bias[0] if layout == "GRAYSCALE" else bias,
                     color_layout=getattr(ct.colorlayout, layout))
    n, c, h, w = spec.shape
    info = TensorInfo("image", [n, h, w, c], "uint8", "NHWC", None,
                      f"CoreML image ({layout}, CVPixelBuffer); scale {scale:.6g} and bias {[round(b, 6) for b in bias]} applied in the model")
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
        raise ConversionError(f"cannot capture {model.name} for CoreML: torch.export failed ({first_line(export_error, 200)}) "
                              f"and torch.jit.trace failed ({first_line(exc, 200)})") from None


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


WEIGHTED_MIL = {"conv", "conv_transpose", "linear", "matmul", "einsum"}


def is_learned(op) -> bool:
    """A weighted op (conv, linear, matmul) that is a learned layer, not a fixed box sum.

    A convolution whose kernel is a constant with one value throughout is a
    (scaled) box sum, not a learned layer: ``devicekit.zoo.layers.ramps``
    makes the soft-argmax and RoI ramps that way on purpose (onnx2tf
    re-lays out constant ramps wrongly); coremltools folds their ``/ C`` and
    ``- 1`` into the kernel and bias. Counting them as learned put the whole
    soft-argmax and RoI crop in front of "a learned layer", so only the last
    17 decode ops stayed fp32 and exp / RoI sampling ran in fp16.
    """
    if op.op_type not in WEIGHTED_MIL:
        return False
    if op.op_type not in ("conv", "conv_transpose"):
        return True
    w = getattr(op, "weight", None)
    val = None if w is None else w.val
    if val is None:
        return True
    val = np.asarray(val)
    return val.size == 0 or bool(np.any(val != val.flat[0]))


def reaches_learned(op) -> bool:
    """Whether a learned layer can be reached from ``op``'s outputs.

    A fresh walk per op: the precision pass rewrites the graph while it asks, so nothing is cached.
    """
    seen, stack = set(), [op]
    while stack:
        for out in stack.pop().outputs:
            for c in out.child_ops:
                if is_learned(c):
                    return True
                if id(c) not in seen:
                    seen.add(id(c))
                    stack.append(c)
    return False


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
            return ct.convert(program, inputs=[inputs], outputs=outputs, convert_to="mlprogram",
                              minimum_deployment_target=getattr(ct.target, o.deployment_target),
                              compute_precision=prec, skip_model_load=True)
    except Exception as exc:  # noqa: BLE001 - coremltools raises many kinds; each becomes one typed line
        raise unsupported_op_error(model, exc) from None


def unsupported_op_error(model, exc: BaseException):
    """ct.convert's exception -> UnsupportedOpError naming the op and layer, or ConversionError."""
    text = str(exc)
    m = (re.search(r"Unsupported fx node \S+, kind ([\w.:]+)", text) or re.search(r"op '([\w.:]+)' not implemented", text)
         or re.search(r"convert function for op '([\w.:]+)'", text))
    if not m:
        return ConversionError(f"coremltools could not convert {model.name} ({first_line(exc)})")
    op = m.group(1).split("::")[-1].split(".")[0]
    layer = _layer_of(model, op)
    hint = FIX_HINTS.get(op.rstrip("_"), "rewrite the layer with ops CoreML supports, or register a composite op "
                         "with coremltools' @register_torch_op")
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
    mlmodel.short_description = (f"{model.name} ({info.get('task', 'model')}{f', {lm} landmarks' if lm else ''}), "
                                 f"{target}, converted by devicekit from {model.source}")
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
        "devicekit.normalization": "(pixel - mean) / std, pixels 0-255" + (" (applied inside the model)" if o.coreml_input == "image" and not input_note else ""),
        "devicekit.input": o.coreml_input if not input_note else "tensor",
        "devicekit.deployment_target": o.deployment_target,
    }
    mlmodel.user_defined_metadata.update(meta)
    desc = mlmodel.input_description
    desc["image"] = ("face crop, " + (f"{spec.color} image" if meta["devicekit.input"] == "image" else "normalised NCHW float32"))
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


def _run(precision: str):
    target_name = f"coreml-{precision}"

    def run(model, opts: ConvertOptions, calib) -> ConversionResult:
        from devicekit.errors import require_module

        require_module("coremltools")
        target = TARGETS[target_name]
        o = opts.resolved.get(target_name) or CoreMLOptions().for_target(target_name)
        if not model.is_torch:
            raise UsageError(f"{target_name} converts PyTorch models; {model.source} is ONNX",
                             hint="give the PyTorch source (zoo:NAME, .pt2, TorchScript or a state dict), or use a tflite target")
        t0 = time.perf_counter()
        ct_input, in_info, note = input_type(model.spec, o.coreml_input)
        notes = [note] if note else []
        quant: dict = {"compute_precision": o.compute_precision, "deployment_target": o.deployment_target,
                       "input": "tensor" if note else o.coreml_input}
        if precision == "w8a8" and calib is None:
            raise UsageError("coreml-w8a8 needs calibration images (--calib DIR)")
        program, how = capture(model)
        quant["mode"] = "fp16" if o.compute_precision == "fp16" else "fp32"
        kept: list[str] = []
        mlmodel = _convert(model, program, ct_input, o, opts.policy.keep_float_tail, kept)
        if kept:
            counts = {t: kept.count(t) for t in sorted(set(kept))}
            quant["fp32_tail_ops"] = {"count": len(kept), "ops": counts,
                                      "why": "after the last learned layer (soft-argmax, RoI crop, coordinate decoding; the "
                                             "all-ones ramp convolutions are box-sums, not learned layers), kept fp32 by the "
                                             "keep-float-tail policy: fp16 there cost 0.13 px on trained heatmap2s"}
        if precision == "w8a8":
            from .coreml_quant import w8a8

            set_metadata(mlmodel, model, target_name, o, note)  # the interpreter reads the normalisation from it
            with quiet():
                mlmodel, qinfo = w8a8(mlmodel, model, calib, opts, opts.gate.limits("w8a8"), program)
            quant.update(qinfo)
        if precision == "int8" or (precision == "fp16" and o.palettize):
            from .coreml_quant import quantize_weights

            with quiet():
                mlmodel, qinfo = quantize_weights(mlmodel, o.palettize)
            quant.update(qinfo)
        set_metadata(mlmodel, model, target_name, o, note)
        path = opts.out_dir / f"{model.name}.{target_name}{target.suffix}"
        save_atomic(mlmodel, path)
        seconds = time.perf_counter() - t0
        manifest = base_manifest(model, target, [in_info], _outputs_info(path, model.output_names), quant, TOOLS)
        finalize(manifest, path)
        from devicekit.fsutil import path_size

        summary = {"size_bytes": path_size(path), "op_counts": op_counts(path), "captured_with": how,
                   "input": quant["input"], "notes": notes}
        return ConversionResult(target_name, path, manifest, seconds=seconds, summary=summary)

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
    out = {"path": runner.path_kind + (" + coremltools predict (macOS)" if predictor else ""),
           "images": int(len(inputs)), "max_abs": abs_err, "max_rel": abs_err / ref_max if ref_max else 0.0}
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
