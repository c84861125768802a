"""``devicekit package ARTIFACT --platform web``: the static web app from mobile_templates/web/.

The template is static (HTML + ES modules, no build step). Rendering writes
``config.json`` from the model's manifest (the same ModelFacts the Android and
iOS projects use: input size and layout, mean/std, colour order, dtype and
quantisation, landmark count, crop policy, 1-euro constants), copies the model
and the face detector into ``model/``, and vendors LiteRT.js (@litertjs/core's
dist and wasm files, @litertjs/wasm-utils) into ``vendor/litertjs/``, resolved
by the page's import map. The template is package data
(``devicekit.mobile_templates``' ``web/``); LiteRT.js and the detector are
fetched into the cache by ``devicekit.fetch`` (npm tarballs pinned by
package-lock.json's integrity; ``$DEVICEKIT_NODE_MODULES`` overrides), so an
installed wheel packages for the web without a checkout.

Face detector: MediaPipe's BlazeFace short-range model
(``face_detection_short_range.tflite`` from the mediapipe 0.10.14 wheel,
``devicekit.fetch.mediapipe``), run by the same LiteRT.js. OpenCV's
Haar cascade (the Python reference detector) has no maintained browser build
short of the 9 MB opencv.js; the BlazeFace box, mapped to its Haar equivalent (benchmarks/web_detector.py), seeds the crop, which is
then refined from the landmarks with crop.py's LANDMARK_BOX (see js/tracker.js).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from devicekit.errors import EnvironmentMissing, InputError
from devicekit.fsutil import jsonable

MARKER = "devicekit-package.json"
DETECTOR_FILE = "face_detection_short_range.tflite"
DETECTOR = {"file": DETECTOR_FILE, "size": 128, "minScore": 0.5, "redetect": 1, "refine": False,
            # BlazeFace box -> the Haar box the crop policy expects; measured by benchmarks/web_detector.py
            "toHaar": {"k": 1.1250, "dx": 0.0040, "dy": -0.1591},
            "source": "mediapipe==0.10.14 wheel: mediapipe/modules/face_detection/face_detection_short_range.tflite"}
LITERT_FILES = {  # vendor/litertjs/<dest> <- <find_node_modules()>/@litertjs/<src>
    "core/index.js": "core/dist/index.js",
    "wasm-utils/index.js": "wasm-utils/dist/index.js",
    "wasm": "core/wasm",
}


# LiteRT.js 2.5 maps only float32/int32/uint8 to typed arrays, so loadAndCompile() throws "Element type
# INT8 is not supported" for a model with an int8 input (devicekit's tflite-int8). The WASM runtime itself
# handles INT8 tensors; the vendored copy gets one more row in its dtype table (checked to apply once).
INT8_PATCH = (
    """    dtype: "uint8",
    typedArrayConstructor: Uint8Array,
    elementType: ElementType.UINT8
  }
]);""",
    """    dtype: "uint8",
    typedArrayConstructor: Uint8Array,
    elementType: ElementType.UINT8
  },
  {
    // added by devicekit package: int8 model inputs (LiteRT.js 2.5 has no int8 row)
    dtype: "int8",
    typedArrayConstructor: Int8Array,
    elementType: ElementType.INT8
  }
]);""",
)


def patch_litertjs(text: str) -> str:
    if 'dtype: "int8"' in text:
        return text  # a LiteRT.js that supports int8 itself
    if text.count(INT8_PATCH[0]) != 1:
        raise EnvironmentMissing("this @litertjs/core build has an unexpected dtype table; devicekit supports 2.5.x",
                                 hint="unset DEVICEKIT_NODE_MODULES (devicekit fetches @litertjs/core 2.5.3 itself)")
    return text.replace(INT8_PATCH[0], INT8_PATCH[1])


@dataclass
class WebRenderResult:
    platform: str
    out_dir: Path
    model_file: str
    files: list[str]
    config: dict
    litertjs_version: str
    warnings: list[str] = field(default_factory=list)
    schema: int = 1

    def to_json(self) -> dict:
        return jsonable(self)


def template_dir() -> Path:
    """The web template: ``web/`` in ``devicekit.mobile_templates``' package data (checkout and wheel alike)."""

    return Path(__file__).resolve().parent / "web"


def find_node_modules() -> Path:
    """node_modules holding @litertjs/core: ``$DEVICEKIT_NODE_MODULES``, else devicekit's cached copy (fetched once)."""
    from devicekit.fetch.litertjs import node_modules

    return node_modules()


def find_detector() -> Path:
    """MediaPipe's BlazeFace short-range model, from the mediapipe wheel into the cache (fetched once)."""
    from devicekit.fetch.mediapipe import model

    return model(DETECTOR_FILE)


def web_config(facts, model_file: str) -> dict:
    from devicekit.face.crop import LANDMARK_BOX

    cfg = facts.spec_json()
    cfg.update({"name": facts.name, "layout": facts.layout, "modelFile": model_file, "outputIndex": facts.output_index,
                "sha256": facts.sha256, "oneEuro": dict(facts.one_euro), "crop": dict(facts.crop),
                "landmarkBox": dict(LANDMARK_BOX), "detector": dict(DETECTOR)})
    return cfg


def render_web(artifact: str | Path, out_dir: str | Path, force: bool = False, detector: Path | None = None) -> WebRenderResult:
    from devicekit.app.facts import model_facts
    from devicekit.manifest import check_unchanged

    from . import _prepare_out, _read, file_digests

    artifact = Path(artifact)
    manifest = _read(artifact, "artifact")
    if manifest.format != "tflite":
        raise InputError(f"--platform web needs a .tflite artifact (LiteRT.js runs .tflite); {artifact.name} is {manifest.format}",
                         hint="devicekit convert MODEL --target tflite-int8")
    facts = model_facts(manifest)
    actual = check_unchanged(artifact, manifest)
    nm = find_node_modules()
    det = Path(detector) if detector else find_detector()
    out_dir = Path(out_dir)
    _prepare_out(out_dir, force)
    model_file = "model.tflite"
    cfg = web_config(facts, model_file)
    version = json.loads((nm / "@litertjs" / "core" / "package.json").read_text())["version"]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        shutil.copytree(template_dir(), tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (tmp / "model").mkdir()
        shutil.copyfile(artifact, tmp / "model" / model_file)
        shutil.copyfile(det, tmp / "model" / DETECTOR_FILE)
        for dest, src in LITERT_FILES.items():
            s, d = nm / "@litertjs" / src, tmp / "vendor" / "litertjs" / dest
            d.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if s.is_dir() else shutil.copyfile)(s, d)
        core = tmp / "vendor" / "litertjs" / "core" / "index.js"
        core.write_text(patch_litertjs(core.read_text(encoding="utf-8")), encoding="utf-8")
        (tmp / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
        files = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
        marker = {"schema": 1, "platform": "web", "artifact": str(artifact.resolve()), "sha256": actual,
                  "model_file": f"model/{model_file}", "litertjs": version, "files": file_digests(tmp, files)}
        (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        files = sorted(files + [MARKER])
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    warnings = [f"the manifest has no {d}; used the documented default" for d in facts.defaults_used]
    return WebRenderResult("web", out_dir, f"model/{model_file}", files, cfg, version, warnings)
