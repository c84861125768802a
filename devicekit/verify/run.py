"""run_verify: load both models, prepare the faces, evaluate, measure video stability, gate, report."""

from __future__ import annotations

from pathlib import Path

from ..config import InputSpec
from ..errors import GateFailed, InputError
from ..face.crop import CROP_POLICY
from .annotations import find_annotations
from .core import check_gates, evaluate, list_images, prepare_faces, public
from .runners import NotVerified, TorchRunner, converted_runner


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

    from .. import zoo

    entry = zoo.get(source[4:])
    module = entry.build()
    if entry.weights_path:
        module.load_state_dict(torch.load(entry.weights_path, map_location="cpu", weights_only=True))
    module.eval()
    return module, entry.input, entry.name


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
    (modelfile.validate: bounds-checked reader, LiteRT in a child process) accepts. A damaged .tflite used to reach
    the in-process interpreter here and take verify down with SIGSEGV."""
    from ..modelfile.validate import validate_model
    from .runners import RUNTIMES

    if artifact.suffix.lower() not in RUNTIMES:
        raise InputError(f"{artifact.name}: verify runs {', '.join(RUNTIMES)} artifacts, not {artifact.suffix or 'this file'}")
    runs, why = validate_model(artifact).runs("xnnpack")  # verify runs a .tflite as a phone does: with XNNPACK
    if not runs:
        raise InputError(f"{artifact.name}: {why}")


def run_verify(artifact: str | Path, reference: str, images: str | Path, annotations: str | Path | None = None,
               video: str | Path | None = None, report_dir: str | Path | None = None,
               max_nme_increase: float | None = None, max_fr_increase: float | None = None, step=None) -> dict:
    import contextlib

    step = step or (lambda name: contextlib.nullcontext())
    artifact = Path(artifact)
    if not artifact.exists():
        raise InputError(f"artifact not found: {artifact}")
    validate_artifact(artifact)
    man_spec, policy = _manifest_spec(artifact)
    with step(f"load {reference}"):
        module, ref_spec, name = load_reference(reference, man_spec)
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


__all__ = ["load_reference", "public", "raise_on_gates", "run_verify"]
