"""run_verify: load both models, prepare the faces, evaluate, measure video stability, gate, report."""

from __future__ import annotations

from pathlib import Path

from ..config import InputSpec
from ..errors import GateFailed, InputError
from ..face.crop import CROP_POLICY
from .annotations import find_annotations
from .core import check_gates, evaluate, list_images, prepare_faces, public
from .runners import NotVerified, TorchRunner, converted_runner


def _manifest_spec(artifact: Path) -> tuple[InputSpec | None, dict]:
    from ..manifest import read_manifest

    man = read_manifest(artifact, required=False)
    if man is None or not man.preprocess:
        return None, dict(CROP_POLICY)
    try:
        spec = InputSpec.from_json(man.preprocess)
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{artifact.name}: the manifest's preprocess block is not an input spec") from None
    return spec, dict(man.preprocess.get("crop") or CROP_POLICY)


def _artifact_spec(artifact: Path, spec: InputSpec | None, ref_spec: InputSpec) -> InputSpec:
    if spec is None:
        return ref_spec
    if spec.shape[1:] != ref_spec.shape[1:]:
        raise InputError(f"{artifact.name} takes input {list(spec.shape)} but the reference takes {list(ref_spec.shape)}",
                         hint="give the --reference this artifact was converted from")
    return spec


def validate_artifact(artifact: Path) -> None:
    """Before the reference is loaded or any interpreter runs: a kind verify runs, and a file the one validation
    (runtime.validate: bounds-checked reader, LiteRT in a child process) accepts. A damaged .tflite used to reach
    the in-process interpreter here and take verify down with SIGSEGV."""
    from ..runtime.validate import validate_model
    from .runners import runtime_for

    runtime_for(artifact)  # a one-line refusal for anything verify does not run
    runs, why = validate_model(artifact).runs("xnnpack")  # verify runs a .tflite as a phone does: with XNNPACK
    if not runs:
        raise InputError(f"{artifact.name}: {why}")


def run_verify(artifact: str | Path, reference: str, images: str | Path, annotations: str | Path | None = None,
               video: str | Path | None = None, report_dir: str | Path | None = None,
               max_nme_increase: float | None = None, max_fr_increase: float | None = None, step=None,
               loader=None) -> dict:
    """Verify ``artifact`` against ``reference``. ``loader(reference, spec) -> (module, spec, name)`` loads the
    reference model (devicekit.pipeline.load_reference: the converter stack's loader, else the zoo)."""
    import contextlib

    step = step or (lambda name: contextlib.nullcontext())
    artifact = Path(artifact)
    if not artifact.exists():
        raise InputError(f"artifact not found: {artifact}")
    validate_artifact(artifact)
    man_spec, policy = _manifest_spec(artifact)
    with step(f"load {reference}"):
        if loader is None:
            raise TypeError("run_verify needs loader= (devicekit.pipeline.verify passes it)")
        module, ref_spec, name = loader(reference, man_spec)
    spec = _artifact_spec(artifact, man_spec, ref_spec)
    files = list_images(images)
    ann = find_annotations(files, annotations)
    if annotations is not None and not ann:
        raise InputError(f"no annotation in {annotations} matches an image in {images}",
                         hint="iBUG .pts (1-based) or JSON, same stem as the image")
    with step(f"find faces in {len(files)} image(s)"):
        faces, skipped = prepare_faces(files, ann, spec, policy)
    ref = TorchRunner(module, None)
    try:
        conv, err = converted_runner(artifact, None), None
    except NotVerified as exc:
        conv, err = None, str(exc)
    with step(f"run both models on {len(faces)} face(s)"):
        result = evaluate(ref, conv, faces, spec, err)
    result.update({"artifact": str(artifact), "reference_model": reference, "crop": policy, "skipped": skipped,
                   "annotations_convention": "iBUG .pts are 1-based (pixel centre of the top-left pixel = (1, 1)); "
                                             "all coordinates here are image pixels with pixel centres at i + 0.5"})
    if video is not None:
        from .video import stability

        runners = {"reference": ref, **({"converted": conv} if conv is not None else {})}
        with step(f"track {Path(video).name}"):
            result["video"] = stability(runners, video, spec)
    failures = check_gates(result, max_nme_increase, max_fr_increase)
    result["gates"] = {"passed": not failures, "failures": failures,
                       "max_nme_increase": max_nme_increase, "max_fr_increase": max_fr_increase}
    if report_dir is not None:
        from .report import write_report

        result["report"] = write_report(result, report_dir, f"devicekit verify: {artifact.name} vs {reference}")
    return result


def raise_on_gates(result: dict) -> None:
    if not result["gates"]["passed"]:
        raise GateFailed("; ".join(result["gates"]["failures"]))


__all__ = ["public", "raise_on_gates", "run_verify"]
