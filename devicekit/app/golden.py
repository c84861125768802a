"""The golden check (DEVICE_PROTOCOL.md, protocol 2): a fixed input and the reference outputs on it.

Every generated project carries ``golden/face.png`` (a public-domain face photo, see ``golden/face.json``),
the model's input made from it by the apps' own preprocessing (``port.py``, the Python port of
Preprocess.kt / Processing.swift) as ``golden_input.bin``, and ``golden.json``: the reference outputs on that
input and the gate they must meet. The on-device tests (androidTest, XCTest) and ``devicekit bench --golden``
run the phone's model on the input and compare.

The reference outputs: the manifest's own record when convert wrote one (``results.golden`` with outputs of the
original model), else the artifact run on the host as verify runs it (ai-edge-litert with XNNPACK for .tflite,
devicekit's MIL reference interpreter for .mlpackage); ``source`` in golden.json says which. The gate: the
limits convert's gate used for this artifact (``results.gate`` in the manifest), else the documented defaults
(converters/judge.py): int8 landmarks 0.5 px mean, fp16 rel_l2 1e-2, fp32 rel_l2 1e-4 -- in model-input pixels.
"""

from __future__ import annotations

import functools
import hashlib
import json
import struct
import zlib
from pathlib import Path

import numpy as np

from devicekit.errors import InputError

from . import port

GOLDEN_DIR = Path(__file__).resolve().parent / "golden_face"
SCHEMA = 2  # the protocol version golden.json belongs to
# converters/judge.py DEFAULT_LIMITS, per precision class (used when the manifest records no gate)
DEFAULT_GATE = {"fp32": {"rel_l2": 1e-4}, "fp16": {"rel_l2": 1e-2}, "int8": {"landmarks_mean_px": 0.5, "rel_l2": 0.05}}


def read_png(path: Path) -> np.ndarray:
    """An 8-bit RGB/RGBA/gray, non-interlaced PNG -> uint8 [H, W, 3] RGB (no OpenCV or Pillow needed)."""
    data = Path(path).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise InputError(f"{path} is not a PNG")
    pos, idat, hdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    w, h, depth, ctype, _, _, interlace = hdr
    chans = {0: 1, 2: 3, 6: 4}.get(ctype)
    if depth != 8 or chans is None or interlace:
        raise InputError(f"{path}: only 8-bit gray/RGB/RGBA non-interlaced PNGs are read here")
    raw = zlib.decompress(idat)
    stride = w * chans
    out = np.zeros((h, stride), np.uint8)
    prev = np.zeros(stride, np.int32)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32)
        cur = np.zeros(stride, np.int32)
        if f == 0:
            cur = line
        elif f == 2:
            cur = (line + prev) & 0xFF
        else:  # sub / average / Paeth depend on the left neighbour: byte by byte
            for i in range(stride):
                a = cur[i - chans] if i >= chans else 0
                b, c = prev[i], (prev[i - chans] if i >= chans else 0)
                if f == 1:
                    p = a
                elif f == 3:
                    p = (a + b) >> 1
                else:
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[i] = (line[i] + p) & 0xFF
        out[y] = cur
        prev = cur
    img = out.reshape(h, w, chans)
    return np.repeat(img, 3, 2) if chans == 1 else np.ascontiguousarray(img[..., :3])


@functools.lru_cache(maxsize=1)
def face() -> tuple[np.ndarray, dict]:
    """The golden face (uint8 RGB) and its facts (source, licence, the Haar box)."""
    meta = json.loads((GOLDEN_DIR / "face.json").read_text())
    img = read_png(GOLDEN_DIR / meta["image"])
    if hashlib.sha256(img.tobytes()).hexdigest() != meta["rgb_sha256"]:
        raise InputError("devicekit/app/golden_face/face.png does not match face.json (rgb_sha256)")
    return img, meta


def golden_box(spec: dict, meta: dict) -> tuple[float, float, float, float]:
    return port.crop_from_detection(spec, *(float(v) for v in meta["box_xywh"]))


def golden_input(spec: dict) -> tuple[np.ndarray, tuple]:
    """The model input for the golden face (the app-side preprocessing) and the crop it used."""
    img, meta = face()
    box = golden_box(spec, meta)
    return port.input_tensor(spec, img, box), box


def _precision(manifest) -> str:
    t = (manifest.target or "").lower()
    return "int8" if ("int8" in t or "w8a8" in t) else ("fp16" if "fp16" in t else "fp32")


def gate_for(manifest) -> dict:
    """The landmark gate convert used for this artifact (results.gate), else the documented default."""
    gate = (manifest.results or {}).get("gate") or {}
    for agreement in gate.values():
        for head in (agreement.get("heads") or []) if isinstance(agreement, dict) else []:
            lim = head.get("limits") or {}
            if head.get("kind") == "landmarks" and "mean_px" in lim:
                return {"landmarks_mean_px": float(lim["mean_px"][1])}
            if head.get("kind") == "landmarks" and "rel_l2" in lim:
                return {"rel_l2": float(lim["rel_l2"][1])}
    return dict(DEFAULT_GATE[_precision(manifest)])


def _run_host(model_path: Path, manifest, x: np.ndarray) -> tuple[list[np.ndarray], str]:
    """The artifact on the host as verify runs it: outputs as float32, and what ran them."""
    from importlib import metadata

    if manifest.format == "tflite":
        from devicekit.runtime import TFLiteRunner

        r = TFLiteRunner(model_path, threads=1, delegate="xnnpack")
        d = r.inputs[0]
        r.interp.set_tensor(d["index"], x.reshape(d["shape"]).astype(d["dtype"]))
        r.interp.invoke()
        outs = [np.asarray(r._from_output(o), np.float32) for o in r.interp.get_output_details()]
        return outs, f"ai-edge-litert {metadata.version('ai-edge-litert')} ({r.delegate}) on the host, the artifact itself"
    from devicekit.milref import run_mlpackage

    name = manifest.inputs[0].name
    res = run_mlpackage(model_path, {name: mil_input(x, manifest.inputs[0].shape)})
    order = [t.name for t in manifest.outputs]
    outs = [np.asarray(res[n], np.float32) for n in order if n in res] or [np.asarray(v, np.float32) for v in res.values()]
    return outs, "devicekit MIL reference interpreter (numpy) on the host, the artifact itself (CoreML predict needs macOS)"


def mil_input(x: np.ndarray, shape) -> np.ndarray:
    """The golden input as CoreML's program takes it: an image input (uint8 HWC pixels, what the app puts in its
    CVPixelBuffer) becomes float NCHW 0-255 (as CoreML makes it from the buffer); a tensor input keeps its shape."""
    if x.dtype == np.uint8:
        hwc = x.reshape(shape[-3:]) if len(shape) == 4 and shape[-1] in (1, 3) else x
        return np.ascontiguousarray(hwc.transpose(2, 0, 1)[None], np.float32)
    return x.reshape(shape)


def make_golden(model_path: str | Path, manifest, facts) -> tuple[dict, bytes]:
    """golden.json (as a dict) and golden_input.bin for ``model_path`` described by ``manifest`` / ``facts``."""
    spec = facts.spec_json()
    if facts.input_dtype == "image":
        spec = {**spec, "inputDtype": "uint8", "mean": [0.0] * facts.channels, "std": [1.0] * facts.channels}
    x, box = golden_input(spec)
    if facts.input_dtype == "image":  # a CoreML ImageType input takes the 0-255 pixels, NHWC
        x = x.reshape(facts.height, facts.width, facts.channels)
    recorded = (manifest.results or {}).get("golden")
    ref_sha = hashlib.sha256(x.tobytes()).hexdigest()
    if recorded and recorded.get("input_sha256") == ref_sha and recorded.get("outputs"):
        outs = [np.asarray(o["values"], np.float32).reshape(o["shape"]) for o in recorded["outputs"]]
        source = recorded.get("source", "the manifest's record")
    else:
        try:
            outs, source = _run_host(Path(model_path), manifest, x)
        except Exception as exc:  # noqa: BLE001 - a runtime that cannot run it here: the golden check is unavailable
            raise InputError(f"the golden outputs cannot be computed here ({type(exc).__name__}: {str(exc)[:200]})",
                             hint="convert records results.golden in the manifest, or package on a machine that runs the model") from None
    outputs = []
    for i, o in enumerate(outs):
        t = manifest.outputs[i] if i < len(manifest.outputs) else None
        q = (t.quantization or {}) if t else {}
        tensor = t.dtype if t and t.dtype in ("int8", "uint8") and manifest.format == "tflite" else "float32"
        # values: dequantised floats; tensor_dtype/scale/zero_point: how the device reads and dequantises its own
        outputs.append({"name": t.name if t else f"output{i}", "shape": list(o.shape), "dtype": "float32",
                        "values": [float(v) for v in o.ravel()], "tensor_dtype": tensor,
                        "scale": float(q.get("scale", 1.0)) if tensor != "float32" else 1.0,
                        "zero_point": int(q.get("zero_point", 0)) if tensor != "float32" else 0})
    lm = outputs[facts.output_index]["values"] if facts.output_index < len(outputs) else []
    pts = port.decode(spec, np.asarray(lm), box) if lm else None
    doc = {
        "protocol": SCHEMA, "model_sha256": facts.sha256, "source": source,
        "image": {"file": "golden_face.png", "box_xywh": face()[1]["box_xywh"], "crop": list(box)},
        "input": {"file": "golden_input.bin", "name": manifest.inputs[0].name, "dtype": str(x.dtype),
                  "shape": list(manifest.inputs[0].shape),
                  "layout": facts.input_layout if facts.input_dtype != "image" else "NHWC", "sha256": ref_sha,
                  "made_by": "devicekit/app/port.py (the apps' own preprocessing of golden_face.png)"},
        "outputs": outputs,
        "landmarks": {"output": facts.output_index, "count": facts.num_landmarks, "values_per_landmark": facts.values_per_landmark,
                      "coords": facts.coords, "input_width": facts.width, "input_height": facts.height,
                      "image_px": [[float(a), float(b)] for a, b in pts] if pts is not None else None},
        "gate": gate_for(manifest),
    }
    return doc, x.tobytes()


def landmark_errors(doc: dict, outputs: list[np.ndarray]) -> dict:
    """golden_result.json's fields for ``outputs`` (the phone's, float) against golden.json ``doc``."""
    res = {"protocol": SCHEMA, "outputs": [], "landmarks_px_mean": None, "landmarks_px_max": None}
    for ref, got in zip(doc["outputs"], outputs):
        r = np.asarray(ref["values"], np.float64)
        g = np.asarray(got, np.float64).ravel()[: r.size]
        den = float(np.sqrt(np.sum(r * r)))
        res["outputs"].append({"name": ref["name"], "max_abs": float(np.max(np.abs(g - r))) if r.size else 0.0,
                               "rel_l2": float(np.sqrt(np.sum((g - r) ** 2)) / den) if den else 0.0})
    lm = doc["landmarks"]
    if lm["output"] < len(outputs):
        v = lm["values_per_landmark"]
        r = np.asarray(doc["outputs"][lm["output"]]["values"], np.float64).reshape(-1, v)[:, :2]
        g = np.asarray(outputs[lm["output"]], np.float64).ravel()[: r.size // 2 * v].reshape(-1, v)[:, :2]
        if lm["coords"] == "normalized":
            r, g = r * [lm["input_width"], lm["input_height"]], g * [lm["input_width"], lm["input_height"]]
        d = np.linalg.norm(g - r, axis=1)
        res["landmarks_px_mean"], res["landmarks_px_max"] = float(d.mean()), float(d.max())
    return res


def judge(result: dict, gate: dict) -> dict:
    """golden_result.json against the gate: {"passed", "failures", "limits", ...the result}."""
    failures = []
    mean = result.get("landmarks_px_mean")
    if "landmarks_mean_px" in gate:
        if mean is None:
            failures.append("the phone reported no landmark error")
        elif not mean <= gate["landmarks_mean_px"]:
            failures.append(f"landmarks {mean:.4g} px mean (limit <= {gate['landmarks_mean_px']:g} px)")
    if "rel_l2" in gate and "landmarks_mean_px" not in gate:
        worst = max((o.get("rel_l2", 0.0) for o in result.get("outputs") or []), default=None)
        if worst is None:
            failures.append("the phone reported no output errors")
        elif not worst <= gate["rel_l2"]:
            failures.append(f"rel_l2 {worst:.3g} (limit <= {gate['rel_l2']:g})")
    return {**result, "limits": gate, "passed": not failures, "failures": failures}
