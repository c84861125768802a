"""Template values from an artifact's manifest, and the name checks.

Everything a template needs comes from the manifest (devicekit/manifest.py):
input size and layout, mean/std per channel, colour order, the input and
output tensors with their dtypes and quantisation, landmark count and layout,
the crop policy (``preprocess["crop"]``) and the 1-euro constants
(``postprocess["one_euro"]``). Where a manifest has no crop policy or 1-euro
constants, the defaults are used: ``devicekit.face.crop.CROP_POLICY`` and
``devicekit.face.one_euro.DEFAULT_PARAMS`` (the one definition of each).
"""

from __future__ import annotations

import re

from devicekit.app.facts import ModelFacts, model_facts  # noqa: F401  (the templates' values come from these)
from devicekit.errors import InputError, UsageError

KOTLIN_KEYWORDS = {
    "as", "break", "class", "continue", "do", "else", "false", "for", "fun", "if", "in", "interface", "is", "null",
    "object", "package", "return", "super", "this", "throw", "true", "try", "typealias", "typeof", "val", "var", "when",
    "while",
}
JAVA_KEYWORDS = {
    "abstract", "assert", "boolean", "break", "byte", "case", "catch", "char", "class", "const", "continue", "default",
    "do", "double", "else", "enum", "extends", "final", "finally", "float", "for", "goto", "if", "implements", "import",
    "instanceof", "int", "interface", "long", "native", "new", "package", "private", "protected", "public", "return",
    "short", "static", "strictfp", "super", "switch", "synchronized", "this", "throw", "throws", "transient", "try",
    "void", "volatile", "while", "true", "false", "null", "_",
}
SWIFT_KEYWORDS = {
    "associatedtype", "class", "deinit", "enum", "extension", "fileprivate", "func", "import", "init", "inout",
    "internal", "let", "open", "operator", "private", "protocol", "public", "rethrows", "static", "struct", "subscript",
    "typealias", "var", "break", "case", "continue", "default", "defer", "do", "else", "fallthrough", "for", "guard",
    "if", "in", "repeat", "return", "switch", "where", "while", "as", "Any", "catch", "false", "is", "nil", "super",
    "self", "Self", "throw", "throws", "true", "try", "Type", "Protocol",
}
# Type names the generated code defines or imports; the landmarker class must not shadow them.
RESERVED_CLASS_NAMES = {
    "ModelSpec", "ModelConfig", "CropBox", "Preprocessor", "Decoder", "OneEuroFilter", "BenchmarkWriter",
    "BenchmarkLoop", "FrameTiming", "DeviceFacts", "FrameStages", "NanoClock", "SystemNanoClock", "LoopOutcome",
    "MainActivity", "FaceTracker", "LandmarkOverlayView", "DevicekitBenchmarkActivity", "Result", "Options",
    "Delegate", "String", "Int", "Array", "Bitmap", "Context", "File", "MLModel", "Data", "URL", "View", "App",
    "ContentView", "CameraModel", "BenchmarkRunner", "OverlayView", "Float", "Double",
    "LandmarkDecoder", "DetectorMap", "GoldenCheck", "GoldenResult", "GoldenRunner", "OutputError",
    "LandmarkerException", "GoldenTest", "GoldenTests", "ModelSpecHolder", "Accelerator", "CompiledModel", "Environment",
    "TensorBuffer", "ComputeUnitsSetting", "Golden", "BuildConfig",
}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def validate_app_id(app_id: str) -> str:
    """A Java package name usable as an Android application id and an iOS bundle id."""
    parts = app_id.split(".")
    if len(parts) < 2:
        raise UsageError(f"--app-id {app_id!r} needs at least two segments, e.g. com.example.facetrack")
    for p in parts:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", p):
            raise UsageError(f"--app-id {app_id!r}: segment {p!r} must start with a letter and hold only letters, digits, _")
        if p in JAVA_KEYWORDS or p in KOTLIN_KEYWORDS:
            raise UsageError(f"--app-id {app_id!r}: segment {p!r} is a Java/Kotlin keyword")
    return app_id


def validate_name(name: str) -> str:
    """The landmarker class name: a Kotlin and Swift type name (letters and digits, starting upper case)."""
    if not _IDENT.match(name) or not re.fullmatch(r"[A-Z][A-Za-z0-9]{0,63}", name):
        raise UsageError(f"--name {name!r} must be a type name: an upper-case letter, then letters or digits (e.g. FaceLandmarker)")
    if name in SWIFT_KEYWORDS or name in KOTLIN_KEYWORDS or name in RESERVED_CLASS_NAMES:
        raise UsageError(f"--name {name!r} clashes with a keyword or a type of the generated code; pick another")
    return name


def _fmt(x: float) -> str:
    """A float literal valid in Kotlin and Swift that parses back to the same double."""
    s = repr(float(x))
    if s in ("nan", "inf", "-inf"):
        raise InputError(f"manifest holds a non-finite number ({s})")
    if "e" not in s and "." not in s:
        s += ".0"
    return s


def code_values(f: ModelFacts) -> dict[str, str]:
    """Placeholder values shared by the Kotlin and Swift model configs (literals valid in both)."""
    return {
        "MODEL_NAME": f.name, "MODEL_SHA256": f.sha256, "MODEL_BYTES": str(f.size_bytes),
        "LANDMARK_LAYOUT": f.layout, "INPUT_TENSOR": f.input_tensor, "OUTPUT_TENSOR": f.output_tensor,
        "OUTPUT_INDEX": str(f.output_index), "INPUT_WIDTH": str(f.width), "INPUT_HEIGHT": str(f.height),
        "INPUT_CHANNELS": str(f.channels), "COLOR": f.color, "INPUT_LAYOUT": f.input_layout,
        "MEAN": ", ".join(_fmt(v) for v in f.mean), "STD": ", ".join(_fmt(v) for v in f.std),
        "INPUT_DTYPE": f.input_dtype, "INPUT_SCALE": _fmt(f.input_scale), "INPUT_ZERO_POINT": str(f.input_zero_point),
        "NUM_LANDMARKS": str(f.num_landmarks), "VALUES_PER_LANDMARK": str(f.values_per_landmark),
        "OUTPUT_DTYPE": f.output_dtype, "OUTPUT_SCALE": _fmt(f.output_scale),
        "OUTPUT_ZERO_POINT": str(f.output_zero_point), "COORDS": f.coords,
        "CROP_ENLARGE": _fmt(f.crop["enlarge"]), "CROP_SHIFT_Y": _fmt(f.crop["shift_y"]),
        "CROP_SQUARE": "true" if f.crop.get("square", True) else "false",
        "ONE_EURO_MIN_CUTOFF": _fmt(f.one_euro["min_cutoff"]), "ONE_EURO_BETA": _fmt(f.one_euro["beta"]),
        "ONE_EURO_D_CUTOFF": _fmt(f.one_euro["d_cutoff"]),
        "KEYPOINT_MAP_K": _fmt(f.detector_maps["keypoints"]["k"]), "KEYPOINT_MAP_DX": _fmt(f.detector_maps["keypoints"]["dx"]),
        "KEYPOINT_MAP_DY": _fmt(f.detector_maps["keypoints"]["dy"]), "VERIFY_RUNTIME": f.verify_runtime,
        "IOS_DEPLOYMENT_TARGET": f.ios_deployment_target, "IOS_MAJOR": f.ios_deployment_target.split(".")[0],
        "MACOS_MAJOR": str(int(f.ios_deployment_target.split(".")[0]) - 3),  # iOS 17 <-> macOS 14 (CoreML, SwiftPM)
    }
