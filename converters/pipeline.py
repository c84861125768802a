"""``convert``: load -> calibrate -> each target -> error vs PyTorch -> gates.

An ordered list of steps per target; each writes its artifact and manifest.
The error of each artifact against the original model is measured on the
calibration images (real faces when given) and recorded in the manifest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from devicekit.errors import GateFailed
from devicekit.fsutil import atomic_write_json
from devicekit.manifest import manifest_path

from .base import ConversionResult, ConvertOptions, resolve_targets
from .calibration import load_calibration


@dataclass
class ConvertReport:
    model: dict
    results: list[ConversionResult] = field(default_factory=list)
    calibration: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    gate_failures: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "schema": "devicekit.convert/1",
            "model": self.model,
            "calibration": self.calibration,
            "artifacts": [r.to_json() for r in self.results],
            "warnings": self.warnings,
            "gates": {"passed": not self.gate_failures, "failures": self.gate_failures},
        }


def measure_error(model, artifact: Path, calib, runner_factory=None) -> dict:
    """Converted vs PyTorch on the calibration inputs.

    Landmark models: mean / max coordinate error in input pixels (and in
    heatmap cells where the model has a heatmap stride). Other models: max
    absolute and relative output difference.
    """
    if not model.is_torch and model.onnx_path is None:
        return {}
    if runner_factory is None:
        from devicekit.tflite_run import TFLiteRunner

        runner_factory = TFLiteRunner
    from devicekit.tflite_run import match_outputs

    runner = runner_factory(artifact)
    dists, abs_err, ref_max = [], 0.0, 0.0
    for x in calib.inputs:
        x = x[None]
        ref = model.run_reference(x)
        got = match_outputs(runner.run(x), ref)
        if model.info.get("landmarks"):
            a, b = ref[0], got[0]
            dists.append(np.linalg.norm(a[..., :2] - b[..., :2], axis=-1).ravel())
        for r, g in zip(ref, got):
            abs_err = max(abs_err, float(np.max(np.abs(r - g))))
            ref_max = max(ref_max, float(np.max(np.abs(r))))
    out = {"images": int(len(calib.inputs)), "on": "synthetic" if calib.synthetic else "calibration images",
           "max_abs": abs_err, "max_rel": abs_err / ref_max if ref_max else 0.0}
    if dists:
        d = np.concatenate(dists)
        out.update({"mean_px": float(d.mean()), "max_px": float(d.max()), "p95_px": float(np.percentile(d, 95))})
        stride = model.info.get("heatmap_stride")
        if stride:  # the finest heatmap (heatmap2s: the 1/4 refinement maps)
            out.update({"heatmap_stride": stride, "mean_cells": float(d.mean() / stride), "max_cells": float(d.max() / stride)})
        coarse = model.info.get("coarse_heatmap_stride")
        if coarse:  # the stage-1 heatmaps (heatmap2s: 16x16 at 1/8)
            out.update({"coarse_heatmap_stride": coarse, "mean_coarse_cells": float(d.mean() / coarse),
                        "max_coarse_cells": float(d.max() / coarse)})
    return out


def convert(model, target_names: list[str], opts: ConvertOptions, step: Callable | None = None, warn: Callable | None = None) -> ConvertReport:
    """Convert ``model`` to every named target; write artifacts + manifests into ``opts.out_dir``."""
    import contextlib

    from .load import check_input_shape

    step = step or (lambda name: contextlib.nullcontext())
    warn = warn or (lambda msg: None)
    targets = resolve_targets(target_names)
    report = ConvertReport(model=dict(model.info))
    with step(f"check the input shape {list(model.spec.shape)}"):
        check_input_shape(model)
    faces = verify_faces(model, opts)
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    with step("load calibration images" if opts.calib_dir else "make a synthetic calibration set"):
        calib = load_calibration(model.spec, opts.calib_dir, opts.calib_count)
    report.calibration = calib.to_json()
    if calib.synthetic:
        msg = ("no --calib folder: int8 ranges and the error below come from SYNTHETIC images, not faces; "
               "pass --calib DIR with real face photos")
        report.warnings.append(msg)
        warn(msg)
    if calib.skipped:
        msg = f"skipped {len(calib.skipped)} unreadable calibration file(s): {', '.join(calib.skipped[:5])}"
        report.warnings.append(msg)
        warn(msg)
    for target in targets:
        with step(f"convert to {target.name}"):
            result = target.run(model, opts, calib)
        with step(f"measure {target.name} against the original"):
            err = _measure_or_not_verified(model, result.artifact, calib, target)
        result.summary["error"] = err
        _record(result, "error_vs_reference", err)
        if opts.extra.get("check", True):
            with step(f"check {target.name}"):
                result.summary["check"] = _check(result.artifact)
            _record(result, "check", result.summary["check"])
        if faces:
            with step(f"verify {target.name} on {len(faces.images)} face image(s)"):
                result.summary["verify"] = _quick_verify(model, result.artifact, faces)
            _record(result, "verify", result.summary["verify"])
            report.gate_failures += [f"{target.name}: {m}" for m in _verify_gates(result.summary["verify"], opts)]
        if opts.max_error is not None:
            # landmark models gate on coordinates (px); others on the max output difference
            key, what = ("max_px", "max coordinate error") if "max_px" in err else ("max_abs", "max output difference")
            if key not in err:
                report.gate_failures.append(f"{target.name}: --max-error could not be checked ({target.name} was not run here)")
            elif err[key] > opts.max_error:
                report.gate_failures.append(f"{target.name}: {what} {err[key]:.4g} > --max-error {opts.max_error}")
        report.results.append(result)
    return report


@dataclass
class VerifyFaces:
    images: list[Path]
    source: str  # where they came from, for the summary
    prepared: tuple | None = None  # detections and crops, made once for every artifact


QUICK_VERIFY_MAX = 16  # images from a calibration folder (agreement only)


def verify_faces(model, opts: ConvertOptions) -> VerifyFaces | None:
    """The faces ``convert`` verifies every artifact on, or None (not a landmark model, --no-verify, none here).

    ``--verify-images DIR`` wins; else, for a 68-point model, the human-annotated
    iBUG-68 faces of the face-data cache (NME of both models and the delta);
    else up to 16 calibration images (agreement only). Resolved before any
    conversion so a bad folder fails fast.
    """
    from devicekit.verify.core import list_images

    ex = opts.extra
    if ex.get("verify") is False or not model.info.get("landmarks"):
        return None
    if ex.get("verify_images"):
        return VerifyFaces(list_images(ex["verify_images"]), str(ex["verify_images"]))
    if model.info.get("landmarks") == 68:
        from devicekit.face_data import face_data_dir

        base = face_data_dir()
        ann = base / "annotated" if base else None
        if ann and ann.is_dir() and any(ann.glob("*.pts")):
            return VerifyFaces(list_images(ann), f"{ann} (human-annotated iBUG-68)")
    if opts.calib_dir:
        return VerifyFaces(list_images(opts.calib_dir)[:QUICK_VERIFY_MAX], f"{opts.calib_dir} (no annotations: agreement only)")
    return None


def _quick_verify(model, artifact: Path, faces: VerifyFaces) -> dict:
    """``devicekit verify``'s numbers for one artifact, compact; a reason instead when it cannot run."""
    from devicekit.errors import DevicekitError

    try:
        from devicekit.verify import quick_verify
        from devicekit.verify.core import prepare_images

        if faces.prepared is None:
            faces.prepared = prepare_images(faces.images, model.spec)
        res = quick_verify(artifact, model, model.spec, faces.images, prepared=faces.prepared)
    except ImportError as exc:  # the face front-end needs opencv (the convert extra)
        return {"status": "skipped", "reason": f"needs {exc.name or 'opencv'} (pip install devicekit[convert])"}
    except DevicekitError as exc:
        return {"status": "skipped", "reason": str(exc)}
    keep = ("faces_total", "annotated", "reference", "converted", "delta", "agreement", "worst")
    out = {k: res[k] for k in keep if k in res}
    out.update({"status": "ran", "images": faces.source, "skipped": len(res.get("skipped", []))})
    return out


def _verify_gates(v: dict, opts: ConvertOptions) -> list[str]:
    limit = opts.extra.get("max_nme_increase")
    if limit is None:
        return []
    from devicekit.verify import check_gates

    if v.get("status") != "ran":
        return [f"--max-nme-increase could not be checked ({v.get('reason', 'verify did not run')})"]
    return check_gates(v, limit, None)


def _measure_or_not_verified(model, artifact: Path, calib, target) -> dict:
    """The error against PyTorch, or a clear "not verified" when the artifact cannot be run here."""
    try:
        from devicekit.milref import OpNotCovered
    except ImportError:  # the CoreML reference interpreter is not installed
        OpNotCovered = ()  # noqa: N806
    try:
        err = measure_error(model, artifact, calib, _runner_for(target))
    except OpNotCovered as exc:  # type: ignore[misc]
        return {"verified": False, "reason": f"not verified: {exc}"}
    if target.family == "coreml":
        err["path"] = "devicekit MIL reference interpreter (numpy); CoreML predict needs macOS"
    return err


def _runner_for(target):
    if target.family == "tflite":
        return None
    try:
        from devicekit.milref import MLPackageRunner  # CoreML reference interpreter
    except ImportError:
        return lambda path: _NotVerified(path)
    return MLPackageRunner


class _NotVerified:
    def __init__(self, path):
        from devicekit.errors import EnvironmentMissing

        raise EnvironmentMissing(f"cannot run {Path(path).name} here to verify it")


def _check(artifact: Path) -> dict:
    """`devicekit check` on what convert wrote: the findings that are not a plain pass."""
    from devicekit.check import run_checks

    report = run_checks(artifact)
    findings = [{"check": r.check, "status": r.status, "message": r.message} for r in report.results if r.status in ("warn", "fail")]
    budget = report.get("budget:play-apk")
    mem = report.get("memory")
    return {
        "ok": report.ok,
        "play_apk_share": budget.value / budget.limit if budget and budget.limit else None,
        "peak_activation_bytes": mem.value if mem else None,
        "findings": findings,
    }


def _record(result: ConversionResult, key: str, value: dict) -> None:
    """Add a measured result to the manifest on disk."""
    p = manifest_path(result.artifact)
    data = json.loads(p.read_text())
    data.setdefault("results", {})[key] = value
    atomic_write_json(p, data)
    result.manifest.results[key] = value


def raise_on_gates(report: ConvertReport) -> None:
    if report.gate_failures:
        raise GateFailed("; ".join(report.gate_failures))
