"""The JSON manifest written next to every artifact.

Every stage writes one (inputs, outputs, normalisation, quantisation, sha256,
tool versions, the command); the next stage reads it instead of guessing.
Templates and the bench app read the same fields.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import __version__
from .errors import InputError
from .fsutil import atomic_write_json, path_size, sha256_file

SCHEMA = "devicekit.manifest/1"


@dataclass
class TensorInfo:
    name: str
    shape: list[int]
    dtype: str
    layout: str | None = None  # NHWC, NCHW, or None for non-image tensors
    quantization: dict | None = None  # {"scale": float, "zero_point": int}
    description: str | None = None

    @classmethod
    def from_json(cls, d: dict) -> "TensorInfo":
        return cls(**{k: d.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]  # read_manifest checks the types


@dataclass
class Manifest:
    artifact: str  # file name, relative to the manifest
    target: str  # e.g. tflite-int8
    format: str  # tflite | coreml | onnx
    model: dict  # name, source, task, landmarks, layout, output coordinate convention
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    preprocess: dict  # InputSpec.to_json() plus the crop policy
    postprocess: dict = field(default_factory=dict)  # e.g. {"one_euro": {...}}
    quantization: dict = field(default_factory=dict)
    sha256: str = ""
    size_bytes: int = 0
    tools: dict = field(default_factory=dict)
    command: str = ""
    created: str = ""
    results: dict = field(default_factory=dict)  # accuracy / check summaries
    status: str = "unverified"  # verified | failed | unverified: convert's gate (results.gate says why)
    schema: str = SCHEMA
    devicekit_version: str = __version__

    def to_json(self) -> dict:
        d = asdict(self)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Manifest":
        if d.get("schema") != SCHEMA:
            raise InputError(f"unsupported manifest schema {d.get('schema')!r} (expected {SCHEMA})")
        d = dict(d)
        d["inputs"] = [TensorInfo.from_json(t) for t in d.get("inputs", [])]
        d["outputs"] = [TensorInfo.from_json(t) for t in d.get("outputs", [])]
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def manifest_path(artifact: str | Path) -> Path:
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".json")


def finalize(manifest: Manifest, artifact_path: Path) -> Path:
    """Fill sha256, size, command and time; write the manifest atomically beside the artifact."""
    manifest.artifact = artifact_path.name
    manifest.sha256 = sha256_file(artifact_path)
    manifest.size_bytes = path_size(artifact_path)
    manifest.command = manifest.command or shlex.join(["devicekit", *sys.argv[1:]])
    manifest.created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return atomic_write_json(manifest_path(artifact_path), manifest.to_json())


def read_manifest(artifact: str | Path, required: bool = True) -> Manifest | None:
    """The manifest next to ``artifact`` (``model.tflite`` -> ``model.tflite.json``)."""
    p = manifest_path(artifact)
    if not p.exists():
        if required:
            raise InputError(
                f"no manifest next to {artifact} (expected {p.name})",
                hint="convert the model with `devicekit convert` to get one",
            )
        return None
    try:
        return Manifest.from_json(json.loads(p.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"{p}: not a valid devicekit manifest ({exc})") from None


def check_unchanged(artifact: str | Path, manifest: Manifest) -> str:
    """The artifact's sha256; InputError when it is no longer the file its manifest describes."""
    artifact = Path(artifact)
    actual = sha256_file(artifact)
    if manifest.sha256 and actual != manifest.sha256:
        raise InputError(f"{artifact.name} does not match its manifest (sha256 {actual[:12]}... vs {manifest.sha256[:12]}...)",
                         hint="the model changed after conversion; convert again")
    return actual


def record_results(artifact: str | Path, entries: dict) -> None:
    """Merge ``entries`` into the manifest's ``results`` (nested dicts merged one level), written atomically.

    Later stages record what they measured or used this way (package: the runtime versions on both sides
    and the golden reference outputs)."""
    p = manifest_path(artifact)
    data = json.loads(p.read_text(encoding="utf-8"))
    results = data.setdefault("results", {})
    for key, value in entries.items():
        if isinstance(value, dict) and isinstance(results.get(key), dict):
            results[key] = {**results[key], **value}
        else:
            results[key] = value
    atomic_write_json(p, data)


def tool_versions(*names: str) -> dict[str, str]:
    """Installed versions of the named distributions (missing ones are skipped)."""
    from importlib import metadata

    out = {"python": sys.version.split()[0], "devicekit": __version__}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            pass
    return out
