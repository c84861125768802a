"""verify: the reference (PyTorch) and the converted model on the same face crops.

Faces come from the Haar detector with the crop policy (devicekit.face). For
an annotated image the detection that overlaps the annotated face is used;
when the detector misses it, the crop comes from the annotation's box (the
300-W protocol gives boxes the same way) and the face is marked
``box: annotation`` in the results. Predictions are mapped back to image
pixels, where every metric and the agreement are computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import InputSpec
from ..errors import InputError
from ..face.crop import CROP_POLICY, CropBox, box_from_detection, detection_from_landmarks, to_image
from ..face.crop import model_pixels as crop_model_pixels
from . import metrics
from .runners import NotVerified

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".webp", ".tif", ".tiff"}
SCHEMA = 1


@dataclass
class Face:
    image: Path
    box: CropBox
    box_source: str  # detector | annotation
    gt: np.ndarray | None = None
    pixels: np.ndarray | None = field(default=None, repr=False)  # the model-input crop, [H, W, C] 0-255


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if folder.is_file():
        return [folder]
    if not folder.is_dir():
        raise InputError(f"images not found: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"{folder} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def read_image(path: Path) -> np.ndarray | None:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return img if img is not None and img.size else None


def _iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    return inter / (aw * ah + bw * bh - inter) if inter else 0.0


def model_pixels(image_bgr: np.ndarray, box: CropBox, spec: InputSpec) -> np.ndarray:
    """The crop as [H, W, C] float32 0-255 pixels in the spec's colour order (face.crop.model_pixels, square)."""
    if spec.height != spec.width:
        raise InputError(f"verify needs a square model input, got {spec.height}x{spec.width}")
    return crop_model_pixels(image_bgr, box, spec)


def prepare_faces(
    images: list[Path], annotations: dict[Path, np.ndarray], spec: InputSpec, policy: dict = CROP_POLICY
) -> tuple[list[Face], list[dict]]:
    from ..face.detect import detect_faces

    faces, skipped = [], []
    for path in images:
        img = read_image(path)
        if img is None:
            skipped.append({"image": str(path), "reason": "unreadable image"})
            continue
        gt = annotations.get(path)
        dets = detect_faces(img)
        if gt is not None:
            want = detection_from_landmarks(gt)
            best = max(dets, key=lambda d: _iou(d, want), default=None)
            if best is not None and _iou(best, want) > 0.3:
                box, src = box_from_detection(best, policy), "detector"
            else:
                box, src = box_from_detection(want, policy), "annotation"
        elif dets:
            box, src = box_from_detection(dets[0], policy), "detector"
        else:
            skipped.append({"image": str(path), "reason": "no face detected"})
            continue
        faces.append(Face(path, box, src, gt, model_pixels(img, box, spec)))
    return faces, skipped


def predict(runner, faces: list[Face], spec: InputSpec) -> np.ndarray:
    """[N, L, 2] landmarks in image pixels."""
    out = []
    for f in faces:
        pts = runner(spec.normalize(f.pixels[None]))
        out.append(to_image(pts, f.box, spec.width))
    return np.stack(out) if out else np.zeros((0, 0, 2), np.float32)


def agreement(a: np.ndarray, b: np.ndarray) -> dict:
    d = np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64), axis=-1)
    return {"mean": float(d.mean()), "max": float(d.max()), "units": "image pixels", "images": int(d.shape[0])}


def evaluate(reference, converted, faces: list[Face], spec: InputSpec, converted_error: str | None = None) -> dict:
    """Metrics for both models (when annotated), their delta, and the agreement.

    ``reference``/``converted`` are runners (NCHW input -> [L, 2] input pixels);
    ``converted`` None with ``converted_error`` set means "not verified".
    """
    if not faces:
        raise InputError("no faces to verify (none detected and none annotated)")
    ref = predict(reference, faces, spec)
    conv = predict(converted, faces, spec) if converted is not None else None
    annotated = [i for i, f in enumerate(faces) if f.gt is not None]
    result: dict = {"schema": SCHEMA, "faces_total": len(faces), "annotated": len(annotated)}
    if annotated:
        gt = np.stack([faces[i].gt for i in annotated])
        if gt.shape[1] != ref.shape[1]:
            raise InputError(f"annotations have {gt.shape[1]} points, the model predicts {ref.shape[1]}")
        result["reference"] = metrics.summary(ref[annotated], gt)
        if conv is not None:
            result["converted"] = metrics.summary(conv[annotated], gt)
            result["delta"] = metrics.delta(result["reference"], result["converted"])
    else:
        result["reference"] = {"images": len(faces)}
        if conv is not None:
            result["converted"] = {"images": len(faces)}
            result["delta"] = {"images": len(faces)}
    if conv is None:
        result["converted"] = {"status": "not verified", "reason": converted_error or "no converted model", "images": 0}
        result["delta"] = {"status": "not verified", "images": 0}
    else:
        result["agreement"] = agreement(ref, conv)
    per_face = []
    for i, f in enumerate(faces):
        row = {"image": str(f.image), "box": f.box.to_json(), "box_source": f.box_source}
        if conv is not None:
            row["agreement_max_px"] = float(np.linalg.norm(ref[i] - conv[i], axis=-1).max())
        if f.gt is not None:
            row["nme_reference"] = float(metrics.nme_per_face(ref[i], f.gt)[0])
            if conv is not None:
                row["nme_converted"] = float(metrics.nme_per_face(conv[i], f.gt)[0])
        per_face.append(row)
    key = "nme_converted" if conv is not None and annotated else "nme_reference" if annotated else "agreement_max_px"
    order = sorted(range(len(faces)), key=lambda i: -per_face[i].get(key, 0.0))
    result["faces"] = per_face
    result["worst"] = [per_face[i]["image"] for i in order[:5]]
    result["_arrays"] = {"reference": ref, "converted": conv, "order": order}  # for the report; dropped from JSON
    result["_faces"] = faces
    return result


def check_gates(result: dict, max_nme_increase: float | None, max_fr_increase: float | None) -> list[str]:
    """Broken gates as messages (fractions: 0.003 = 0.3 NME points)."""
    failures = []
    d = result.get("delta", {})
    if (max_nme_increase is not None or max_fr_increase is not None) and "nme_inter_ocular" not in d:
        failures.append("accuracy gates need annotated faces and a verified converted model")
        return failures
    if max_nme_increase is not None and d["nme_inter_ocular"] > max_nme_increase:
        failures.append(f"NME (inter-ocular) rose by {d['nme_inter_ocular']:.4f} > {max_nme_increase:.4f}")
    if max_fr_increase is not None:
        for t in ("fr_0.08", "fr_0.10"):
            if d[t] > max_fr_increase:
                failures.append(f"failure rate {t[3:]} rose by {d[t]:.4f} > {max_fr_increase:.4f}")
    return failures


def public(result: dict) -> dict:
    return {k: v for k, v in result.items() if not k.startswith("_")}


def prepare_images(images, spec: InputSpec) -> tuple[list[Face], list[dict]]:
    """Faces (crops, annotations picked up next to the images as <stem>.pts / <stem>.json) and skipped images."""
    from .annotations import find_annotations

    files = list_images(images) if isinstance(images, (str, Path)) else [Path(p) for p in images]
    return prepare_faces(files, find_annotations(files, None), spec)


def quick_verify(artifact_path, reference_module, spec: InputSpec, images, prepared=None) -> dict:
    """The quick check ``convert`` runs when faces are available.

    ``artifact_path``: a .tflite, or an .mlpackage run in devicekit's MIL reference
    interpreter (reported as not verified only when it holds an op the interpreter does not cover);
    ``reference_module``: a torch module or converters.LoadedModel returning
    [N, L, 2] landmarks in input pixels; ``spec``: the model input;
    ``images``: a folder or a list of image paths (annotations are picked up
    next to the images as <stem>.pts / <stem>.json); ``prepared``: what
    ``prepare_images`` returned for them, so several artifacts share one
    detection pass. Returns the public result dict (reference, converted,
    delta, agreement, faces).
    """
    from .runners import TorchRunner, converted_runner

    faces, skipped = prepared if prepared is not None else prepare_images(images, spec)
    ref = TorchRunner(reference_module, None)
    try:
        conv, err = converted_runner(artifact_path, None), None
    except NotVerified as exc:
        conv, err = None, str(exc)
    res = public(evaluate(ref, conv, faces, spec, err))
    res["skipped"] = skipped
    return res
