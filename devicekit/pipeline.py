"""The layer above converters/ and mobile_templates/: it wires convert -> check -> verify.

``convert``: load -> calibrate -> each target -> error vs PyTorch -> gates. An ordered list of steps per
target; each writes its artifact and manifest. The error of each artifact against the original model is
measured on the calibration images (real faces when given) and recorded in the manifest, then ``check``
and the verify gates run on it. ``verify``: ``devicekit.verify`` with the reference model loaded by the
converter stack. The core (devicekit/ below this module) never imports converters or mobile_templates;
tests/test_layers.py holds that.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from devicekit.config import InputSpec
from devicekit.converters.base import ConversionResult, ConvertOptions, resolve_options, resolve_targets
from devicekit.converters.calibration import load_calibration
from devicekit.converters.judge import InputSet, Verdict, reference_outputs
from devicekit.errors import GateFailed, InputError
from devicekit.fsutil import atomic_write_json
from devicekit.manifest import manifest_path
from devicekit.runtime import compare, head_kinds, match_outputs


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


def legacy_error(model, ref: list[list[np.ndarray]], got: list[list[np.ndarray]], on: str) -> dict:
    """The summary's ``error`` block (kept as earlier releases wrote it): landmark px and heatmap cells, max abs/rel."""
    dists, abs_err, ref_max = [], 0.0, 0.0
    for r_outs, g_outs in zip(ref, got):
        if model.info.get("landmarks"):
            a, b = r_outs[0], g_outs[0]
            dists.append(np.linalg.norm(a[..., :2] - b[..., :2], axis=-1).ravel())
        for r, g in zip(r_outs, g_outs):
            abs_err = max(abs_err, float(np.max(np.abs(r - g))))
            ref_max = max(ref_max, float(np.max(np.abs(r))))
    out = {"images": len(ref), "on": on, "max_abs": abs_err, "max_rel": abs_err / ref_max if ref_max else 0.0}
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


def measure_error(model, artifact: Path, calib) -> dict:
    """The legacy ``error`` block of ``artifact`` against the reference model on ``calib.inputs``, run as a phone would."""
    from devicekit.runtime import open_runner

    runner = open_runner(artifact)
    ref = [model.run_reference(x[None]) for x in calib.inputs]
    got = [match_outputs(runner.run(x[None]), r) for x, r in zip(calib.inputs, ref)]
    return legacy_error(model, ref, got, "synthetic" if calib.synthetic else "calibration images")


def _input_sets(calib) -> list[InputSet]:
    kind = "synthetic " if calib.synthetic else ""
    sets = [InputSet("calibration", calib.inputs, f"{len(calib.inputs)} {kind}calibration images")]
    for key, arr, what in (("validation", calib.validation, "validation"), ("holdout", calib.holdout, "held-out")):
        if arr is not None and len(arr):
            sets.append(InputSet(key, arr, f"{len(arr)} {kind}{what} images"))
    return sets


def evaluate(model, result: ConversionResult, target, calib, opts: ConvertOptions) -> tuple[dict, Verdict]:
    """Run the artifact as a phone would (TFLite: XNNPACK; CoreML: the MIL interpreter) on the calibration and
    held-out inputs; judge every head against the reference (the gate) and keep the legacy error block."""
    from devicekit.errors import DevicekitError
    from devicekit.runtime import DelegateError, open_runner

    verdict = Verdict()
    if not model.is_torch and model.onnx_path is None:
        verdict.not_run = "no reference model to compare with"
        return {}, verdict
    try:
        from devicekit.milref import OpNotCovered
    except ImportError:  # the CoreML reference interpreter is not installed
        OpNotCovered = ()  # noqa: N806
    limits = opts.gate.limits(target.precision)
    try:
        runner = open_runner(result.artifact)
    except DelegateError as exc:
        verdict.failures.append(f"does not run under XNNPACK, LiteRT's default CPU path on phones ({exc})")
        return {"verified": False, "reason": str(exc)}, verdict
    except (OpNotCovered, ImportError) as exc:  # type: ignore[misc]
        verdict.not_run = f"not verified: {exc}"
        return {"verified": False, "reason": verdict.not_run}, verdict
    error = {}
    try:
        for s in _input_sets(calib):
            ref = reference_outputs(model, s.inputs, s.key)
            got = [match_outputs(runner.run(x[None]), r) for x, r in zip(s.inputs, ref)]
            kinds = head_kinds(ref[0], model.info.get("landmarks"), model.info.get("task"))
            a = compare(ref, got, kinds, limits, head_names(model, ref[0]), on=s.what)
            verdict.agreements[s.key] = a
            verdict.failures += [f"{s.key}: {f}" for f in a.failures()]
            if s.key == "calibration":
                error = legacy_error(model, ref, got, "synthetic" if calib.synthetic else "calibration images")
    except OpNotCovered as exc:  # type: ignore[misc]
        verdict.not_run = f"not verified: {exc}"
        return {"verified": False, "reason": verdict.not_run}, verdict
    except DevicekitError as exc:
        verdict.failures.append(f"could not be run on the inputs: {exc}")
        return {"verified": False, "reason": str(exc)}, verdict
    if target.family == "coreml":
        error["path"] = "devicekit MIL reference interpreter (numpy); CoreML predict needs macOS"
    if result.float_reference is not None and calib.holdout is not None and len(calib.holdout):
        # int8 against the file it was quantised from, too: what quantisation alone costs
        from devicekit.runtime import TFLiteRunner

        fp32 = TFLiteRunner(result.float_reference, delegate="xnnpack", name="fp32")
        torch_ref = reference_outputs(model, calib.holdout, "holdout")
        ref = [match_outputs(fp32.run(x[None]), r) for x, r in zip(calib.holdout, torch_ref)]
        got = [match_outputs(runner.run(x[None]), r) for x, r in zip(calib.holdout, ref)]
        kinds = head_kinds(ref[0], model.info.get("landmarks"), model.info.get("task"))
        verdict.agreements["vs_fp32"] = compare(ref, got, kinds, limits, head_names(model, ref[0]),
                                                on=f"{len(ref)} held-out images, int8 vs the fp32 file (not gated)")
    share = result.summary.get("int8_mac_share")
    if share is not None and share < opts.gate.min_int8_share:
        verdict.failures.append(f"only {share:.0%} of MACs run in int8 (minimum {opts.gate.min_int8_share:.0%}, --min-int8-share)")
    return error, verdict


def convert(model, target_names: list[str], opts: ConvertOptions, step: Callable | None = None, warn: Callable | None = None) -> ConvertReport:
    """Convert ``model`` to every named target; write artifacts + manifests into ``opts.out_dir``."""
    import contextlib

    from devicekit.converters.load import check_input_shape

    step = step or (lambda name: contextlib.nullcontext(_NoMark()))
    warn = warn or (lambda msg: None)
    import dataclasses

    targets = resolve_targets(target_names)
    # every requested target's options, validated before any work (an option none of them takes is an error)
    opts = dataclasses.replace(opts, resolved=resolve_options(targets, opts.target_options))
    report = ConvertReport(model=dict(model.info))
    with step(f"check the input shape {list(model.spec.shape)}"):
        check_input_shape(model)
    faces = verify_faces(model, opts)
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    with step("load calibration images" if opts.calib_dir else "make a synthetic calibration set"):
        needs_images = any(t.needs_calibration for t in targets)
        calib = load_calibration(model.spec, opts.calib_dir, opts.calib_count, min_images=opts.calib_min if needs_images else 1)
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
        with step(f"convert to {target.name}") as st:
            result = target.run(model, opts, calib)
            st.neutral()  # written, not judged yet: the judge step gives the tick or the cross
        with step(f"judge {target.name} against the original ({' and '.join(s.what for s in _input_sets(calib))})") as st:
            err, verdict = evaluate(model, result, target, calib, opts)
            if not verdict.passed:
                st.fail(verdict.not_run or "; ".join(verdict.failures[:3]))
        result.summary["error"] = err
        result.summary["gate"] = verdict.to_json()
        _record(result, "error_vs_reference", err)
        _record(result, "gate", result.summary["gate"], status=result.status)
        if not verdict.passed:
            what = verdict.not_run or "; ".join(verdict.failures)
            hint = _hint(target, verdict)
            if opts.gate.enabled:
                report.gate_failures.append(f"{target.name}: {what}" + (f" ({hint})" if hint else ""))
            else:
                msg = f"{target.name} FAILED its gate and was kept because of --no-gate: {what}"
                report.warnings.append(msg)
                warn(msg)
        if opts.check:
            with step(f"check {target.name}") as st:
                result.summary["check"] = _check(result.artifact)
                if not result.summary["check"]["ok"] or result.status != "verified":
                    st.neutral()
            _record(result, "check", result.summary["check"])
        if faces:
            with step(f"verify {target.name} on {len(faces.images)} face image(s)") as st:
                result.summary["verify"] = _quick_verify(model, result.artifact, faces)
                failed = _verify_gates(result.summary["verify"], opts)
                if failed:
                    st.fail("; ".join(failed))
                elif result.summary["verify"].get("status") != "ran" or result.status != "verified":
                    st.neutral()
            _record(result, "verify", result.summary["verify"])
            report.gate_failures += [f"{target.name}: {m}" for m in failed]
        if opts.max_error is not None:
            # landmark models gate on coordinates (px); others on the max output difference
            key, what = ("max_px", "max coordinate error") if "max_px" in err else ("max_abs", "max output difference")
            if key not in err:
                report.gate_failures.append(f"{target.name}: --max-error could not be checked ({target.name} was not run here)")
            elif err[key] > opts.max_error:
                report.gate_failures.append(f"{target.name}: {what} {err[key]:.4g} > --max-error {opts.max_error}")
        report.results.append(result)
    return report


class _NoMark:
    def fail(self, reason: str) -> None:
        pass

    def neutral(self) -> None:
        pass


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

    if not opts.verify or not model.info.get("landmarks"):
        return None
    if opts.verify_images:
        return VerifyFaces(list_images(opts.verify_images), str(opts.verify_images))
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
    limit = opts.max_nme_increase
    if limit is None:
        return []
    from devicekit.verify import check_gates

    if v.get("status") != "ran":
        return [f"--max-nme-increase could not be checked ({v.get('reason', 'verify did not run')})"]
    return check_gates(v, limit, None)


def head_names(model, outputs: list[np.ndarray]) -> list[str]:
    """The model's output names, or ``output<i> [shape]`` when it has none."""
    if len(model.output_names) == len(outputs):
        return list(model.output_names)
    return [f"output{i} {list(np.shape(o))}" for i, o in enumerate(outputs)]


def _hint(target, verdict: Verdict) -> str:
    """What to try when an artifact fails its gate."""
    if verdict.not_run:
        return ""
    text = " ".join(verdict.failures)
    if "XNNPACK" in text:
        return "devicekit check ARTIFACT lists the ops XNNPACK refuses"
    if target.precision in ("int8", "w8a8"):
        return ("calibrate on more real images like the ones the model sees (--calib DIR), try --policy search, "
                "or loosen a limit with --gate int8.KEY=VALUE; --no-gate keeps the artifact anyway")
    return "--gate KEY=VALUE loosens a limit; --no-gate keeps the artifact anyway"


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


def _record(result: ConversionResult, key: str, value: dict, status: str | None = None) -> None:
    """Add a measured result (and the gate's status) to the manifest on disk."""
    p = manifest_path(result.artifact)
    data = json.loads(p.read_text())
    data.setdefault("results", {})[key] = value
    if status is not None:
        data["status"] = result.manifest.status = status
    atomic_write_json(p, data)
    result.manifest.results[key] = value


def raise_on_gates(report: ConvertReport) -> None:
    if report.gate_failures:
        raise GateFailed("; ".join(report.gate_failures))


# ---- verify: the reference model comes from the converter stack (or, without it, the zoo) ----

def load_reference(source: str, spec: InputSpec | None = None):
    """(model, spec, name): a converters.LoadedModel when the converter is installed, else a zoo model.
    ``spec`` (from the artifact's manifest) is what a checkpoint without one of its own needs."""
    try:
        from devicekit.converters import load_model
    except ImportError:
        load_model = None
    if load_model is not None:
        m = load_model(source, spec=None if source.startswith("zoo:") else spec)
        return m, m.spec, m.name
    if not source.startswith("zoo:"):
        raise InputError(f"cannot load {source} without the converter stack", hint="pip install 'devicekit[convert]'")
    import torch

    from devicekit import zoo

    entry = zoo.get(source[4:])
    module = entry.build()
    if entry.weights_path:
        module.load_state_dict(torch.load(entry.weights_path, map_location="cpu", weights_only=True))
    module.eval()
    return module, entry.input, entry.name


def verify(artifact, reference: str, images, **kw) -> dict:
    """``devicekit verify``: ``devicekit.verify.run.run_verify`` with the reference loaded by ``load_reference``."""
    from devicekit.verify.run import run_verify

    return run_verify(artifact, reference, images, loader=load_reference, **kw)
