"""What an app on a phone needs to know about its model, read from the artifact's manifest.

``model_facts`` checks that the manifest describes a landmark model the apps support and reduces it to
``ModelFacts``: input size and layout, mean/std per channel, colour order, the input and output tensors with
their dtypes and quantisation, landmark count, the crop policy (``preprocess["crop"]``), the 1-euro constants
(``postprocess["one_euro"]``) and the detector maps. Where a manifest lacks the crop policy or the 1-euro
constants, the one definition of each is used (``devicekit.face.crop.CROP_POLICY``,
``devicekit.face.one_euro.DEFAULT_PARAMS``). The generated projects (mobile_templates), the web app, the golden
check and ``bench`` all read the model through this.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from devicekit.errors import InputError

LANDMARK_TASKS = ("landmarks", "landmarks3d")
DTYPES = ("float32", "int8", "uint8")


@dataclass
class ModelFacts:
    """The manifest reduced to what the generated code needs (also the values tests compare)."""

    name: str
    layout: str
    width: int
    height: int
    channels: int
    color: str
    input_layout: str
    mean: list[float]
    std: list[float]
    input_tensor: str
    input_dtype: str
    input_scale: float
    input_zero_point: int
    num_landmarks: int
    values_per_landmark: int
    output_tensor: str
    output_index: int
    output_dtype: str
    output_scale: float
    output_zero_point: int
    coords: str
    crop: dict
    one_euro: dict
    sha256: str
    size_bytes: int
    defaults_used: list[str] = field(default_factory=list)
    detector_maps: dict = field(default_factory=dict)  # preprocess.crop.detector_maps (devicekit.face.boxmap)
    verify_runtime: str = ""  # the runtime verify judged the artifact with
    ios_deployment_target: str = "17.0"  # the CoreML converter's minimum deployment target

    def spec_json(self) -> dict:
        """The ModelSpec fields, as the Kotlin/Swift code holds them."""
        return {
            "inputWidth": self.width, "inputHeight": self.height, "channels": self.channels, "color": self.color,
            "inputLayout": self.input_layout, "mean": self.mean, "std": self.std, "inputDtype": self.input_dtype,
            "inputScale": self.input_scale, "inputZeroPoint": self.input_zero_point, "numLandmarks": self.num_landmarks,
            "valuesPerLandmark": self.values_per_landmark, "outputDtype": self.output_dtype,
            "outputScale": self.output_scale, "outputZeroPoint": self.output_zero_point, "coords": self.coords,
            "cropEnlarge": float(self.crop["enlarge"]), "cropShiftY": float(self.crop["shift_y"]),
            "cropSquare": bool(self.crop.get("square", True)), "oneEuroMinCutoff": float(self.one_euro["min_cutoff"]),
            "oneEuroBeta": float(self.one_euro["beta"]), "oneEuroDCutoff": float(self.one_euro["d_cutoff"]),
        }


def _pick_output(outputs, n: int | None):
    if not outputs:
        raise InputError("the manifest lists no output tensors")
    for i, t in enumerate(outputs):
        if (t.description or "").lower().startswith("landmark") or "landmark" in (t.name or "").lower():
            return i, t
    for i, t in enumerate(outputs):
        size = 1
        for d in t.shape:
            size *= int(d)
        if n and size in (2 * n, 3 * n):
            return i, t
    return 0, outputs[0]


def model_facts(manifest) -> ModelFacts:
    """Check the manifest describes a landmark model the templates support, and collect its facts."""
    from devicekit.face.crop import CROP_POLICY  # the defaults, for a manifest that lacks them
    from devicekit.face.one_euro import DEFAULT_PARAMS

    m = manifest.model or {}
    task = m.get("task")
    if task not in LANDMARK_TASKS:
        raise InputError(f"package supports landmark models (task {' or '.join(LANDMARK_TASKS)}); this manifest says task {task!r}")
    pre = manifest.preprocess or {}
    try:
        n_, c, h, w = (int(v) for v in pre["shape"])
        color = pre["color"]
        mean = [float(v) for v in pre["mean"]]
        std = [float(v) for v in pre["std"]]
    except (KeyError, TypeError, ValueError):
        raise InputError("manifest preprocess needs shape [N,C,H,W], mean, std and color") from None
    if color not in ("rgb", "bgr", "gray") or (color == "gray") != (c == 1) or c not in (1, 3):
        raise InputError(f"manifest preprocess: color {color!r} does not fit {c} channels")
    if len(mean) == 1:
        mean = mean * c
    if len(std) == 1:
        std = std * c
    if len(mean) != c or len(std) != c or any(s == 0 for s in std):
        raise InputError(f"manifest preprocess: mean/std need {c} values and std must not be 0")
    if not manifest.inputs:
        raise InputError("the manifest lists no input tensors")
    tin = manifest.inputs[0]
    shape = [int(v) for v in tin.shape]
    layout = tin.layout or ("NCHW" if shape == [n_, c, h, w] else "NHWC")
    expect = [n_, h, w, c] if layout == "NHWC" else [n_, c, h, w]
    if layout not in ("NHWC", "NCHW") or shape != expect:
        raise InputError(f"input tensor {tin.name} has shape {shape} ({layout}); the preprocess shape [N,C,H,W]={[n_, c, h, w]} needs {expect}")
    n = m.get("landmarks")
    oi, tout = _pick_output(manifest.outputs, n)
    size = 1
    for d in tout.shape:
        size *= int(d)
    if not n:
        if len(tout.shape) >= 2 and int(tout.shape[-1]) in (2, 3):
            n = size // int(tout.shape[-1])
        else:
            raise InputError(f"manifest model.landmarks is missing and output {tout.name} shape {tout.shape} does not say it")
    n = int(n)
    if size % n or size // n not in (2, 3):
        raise InputError(f"output {tout.name} has {size} values, which is not 2 or 3 per landmark for {n} landmarks")
    # A CoreML ImageType input (uint8 NHWC, no quantisation): the app hands the model a CVPixelBuffer
    # and the model applies scale/bias itself (converters/coreml.py).
    coreml_image = manifest.format == "coreml" and tin.dtype == "uint8" and not tin.quantization
    floats = ("float32", "float16") if manifest.format == "coreml" else ("float32",)
    for t, what in ((tin, "input"), (tout, "output")):
        if t is tin and coreml_image:
            continue
        if t.dtype not in DTYPES + floats:
            raise InputError(f"{what} tensor {t.name} has dtype {t.dtype}; the templates handle {', '.join(DTYPES + floats[1:])}")
        if t.dtype not in floats and not (t.quantization and "scale" in t.quantization):
            raise InputError(f"{what} tensor {t.name} is {t.dtype} but the manifest has no quantization scale/zero_point")
    used = []
    crop = pre.get("crop")
    if not crop:
        crop = dict(CROP_POLICY)
        used.append("crop policy")
    one_euro = (manifest.postprocess or {}).get("one_euro")
    if not one_euro:
        one_euro = dict(DEFAULT_PARAMS)
        used.append("one-euro constants")
    for k in ("enlarge", "shift_y"):
        if not isinstance(crop.get(k), (int, float)):
            raise InputError(f"manifest crop policy lacks a number for {k!r}")
    for k in ("min_cutoff", "beta", "d_cutoff"):
        if not isinstance(one_euro.get(k), (int, float)):
            raise InputError(f"manifest one_euro lacks a number for {k!r}")
    maps = crop.get("detector_maps")
    if not maps or not isinstance(maps.get("keypoints"), dict):
        maps = CROP_POLICY.get("detector_maps") or {}
        used.append("detector maps")
    kp = maps.get("keypoints") or {}
    for k in ("k", "dx", "dy"):
        if not isinstance(kp.get(k), (int, float)) or (k == "k" and kp[k] <= 0):
            raise InputError(f"manifest crop.detector_maps.keypoints lacks a number for {k!r}",
                             hint="convert again, or remove detector_maps to use devicekit's measured maps")
    coords = m.get("coords", "input_pixels")
    if coords not in ("input_pixels", "normalized"):
        raise InputError(f"manifest model.coords {coords!r} is not input_pixels or normalized")
    qi = tin.quantization or {}
    qo = tout.quantization or {}
    in_dtype = "image" if coreml_image else tin.dtype
    out_dtype = "float32" if tout.dtype == "float16" else tout.dtype  # CoreML hands back floats either way
    return ModelFacts(
        name=str(m.get("name") or "model"), layout=str(m.get("layout") or "unknown"), width=w, height=h, channels=c,
        color=color, input_layout=layout, mean=mean, std=std, input_tensor=tin.name,
        input_dtype=in_dtype, input_scale=float(qi.get("scale", 1.0)) if in_dtype in ("int8", "uint8") else 1.0,
        input_zero_point=int(qi.get("zero_point", 0)) if in_dtype in ("int8", "uint8") else 0,
        num_landmarks=n, values_per_landmark=size // n, output_tensor=tout.name, output_index=oi,
        output_dtype=out_dtype, output_scale=float(qo.get("scale", 1.0)) if out_dtype != "float32" else 1.0,
        output_zero_point=int(qo.get("zero_point", 0)) if out_dtype != "float32" else 0, coords=coords,
        crop=dict(crop), one_euro=dict(one_euro), sha256=manifest.sha256, size_bytes=int(manifest.size_bytes or 0),
        defaults_used=used, detector_maps=maps, verify_runtime=verify_runtime(manifest),
        ios_deployment_target=_ios_target(manifest),
    )


def verify_runtime(manifest) -> str:
    """The runtime verify judges this artifact with: the manifest's record, else the host's."""
    rec = ((manifest.results or {}).get("runtimes") or {}).get("verify")
    if rec:
        return str(rec)
    if manifest.format != "tflite":
        return "devicekit MIL reference interpreter (numpy)"
    version = (manifest.tools or {}).get("ai-edge-litert")
    if not version:
        from importlib import metadata

        try:
            version = metadata.version("ai-edge-litert")
        except metadata.PackageNotFoundError:
            version = "unknown"
    return f"ai-edge-litert {version}"


def _ios_target(manifest) -> str:
    """"17.0" from the converter's deployment target (manifest quantization.deployment_target, e.g. iOS17)."""
    dt = str((manifest.quantization or {}).get("deployment_target") or "iOS17")
    m = re.fullmatch(r"iOS(\d+)(?:\.(\d+))?", dt)
    if not m:
        raise InputError(f"manifest deployment_target {dt!r} is not iOSNN")
    return f"{m.group(1)}.{m.group(2) or 0}"
