"""The one small interface every target implements.

A target is data (name, family, suffix, options) plus a function that turns
a loaded model into an artifact. Targets register themselves with
``@register_target``; a duplicate name raises. ``convert`` dispatches
exhaustively over the registry: no if-chains over format names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from devicekit.config import InputSpec
from devicekit.errors import UsageError

from .judge import GateConfig


POLICIES = ("search", "keep-float-tail", "all-int8")


@dataclass(frozen=True)
class QuantPolicy:
    """Which parts of the graph stay in float when the rest is int8.

    ``search`` (default): TFLite int8 starts all-int8 and keeps in float only
    the regions the gate's measurement needs (converters/tflite_int8.py);
    CoreML keeps the coordinate tail float (``keep_float_tail``).
    ``keep-float-tail``: the fixed rule: the coordinate math after the last
    learned layer (soft-argmax, RoI sampling, decoding) and the output layers
    stay float. ``all-int8``: nothing float.
    """

    name: str = "search"
    keep_float_tail: bool = True
    search: bool = True
    extra_float_ops: tuple[str, ...] = ()

    @classmethod
    def named(cls, name: str) -> "QuantPolicy":
        if name in ("search", "default"):
            return cls()
        if name == "keep-float-tail":
            return cls(name="keep-float-tail", search=False)
        if name in ("none", "off", "all-int8"):
            return cls(name="all-int8", keep_float_tail=False, search=False)
        raise UsageError(f"unknown quantisation policy {name!r} (known: {', '.join(POLICIES)})")


@dataclass(frozen=True)
class ConvertOptions:
    spec: InputSpec
    out_dir: Path
    calib_dir: Path | None = None
    calib_count: int = 64
    calib_min: int = 8  # fewest good calibration images int8 accepts
    policy: QuantPolicy = field(default_factory=QuantPolicy)
    backend: str = "onnx2tf"
    max_error: float | None = None
    gate: GateConfig = field(default_factory=GateConfig)
    extra: dict = field(default_factory=dict)  # target-specific options (e.g. deployment target)

    def __post_init__(self):
        if self.calib_count < 1:
            raise UsageError("--calib-count must be at least 1")
        if self.calib_min < 1:
            raise UsageError("--calib-min must be at least 1")
        if self.backend not in ("onnx2tf", "litert-torch"):
            raise UsageError(f"unknown --backend {self.backend!r} (known: onnx2tf, litert-torch)")


@dataclass(frozen=True)
class Target:
    name: str  # tflite-int8
    family: str  # tflite | coreml
    suffix: str  # .tflite | .mlpackage
    precision: str  # fp32 | fp16 | int8 | w8a8
    needs_calibration: bool
    description: str
    run: Callable[..., Any]  # (loaded_model, options, calibration) -> ConversionResult


TARGETS: dict[str, Target] = {}


def register_target(name: str, *, family: str, suffix: str, precision: str, needs_calibration: bool, description: str):
    def deco(fn):
        if name in TARGETS:
            raise RuntimeError(f"target {name} registered twice")
        TARGETS[name] = Target(name, family, suffix, precision, needs_calibration, description, fn)
        return fn

    return deco


def resolve_targets(names: list[str]) -> list[Target]:
    """'all' -> every registered target; unknown names are a usage error with a suggestion."""
    out: list[Target] = []
    for n in names:
        if n == "all":
            out += [t for t in TARGETS.values() if t not in out]
            continue
        if n not in TARGETS:
            import difflib

            close = difflib.get_close_matches(n, TARGETS, n=1)
            hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(TARGETS)}, all"
            raise UsageError(f"unknown target {n!r}", hint=hint)
        if TARGETS[n] not in out:
            out.append(TARGETS[n])
    if not out:
        raise UsageError("no target given (use --target tflite-int8, ...)")
    return out


@dataclass
class ConversionResult:
    """What a target returns: the artifact, its manifest (already written), and summary facts."""

    target: str
    artifact: Path
    manifest: Any  # devicekit.manifest.Manifest
    seconds: float = 0.0
    summary: dict = field(default_factory=dict)  # op_counts, float_ops, error, size ...
    float_reference: bytes | None = None  # tflite-int8: the fp32 file of the same graph, judged against too

    @property
    def status(self) -> str:
        """verified | failed | unverified, from the gate's verdict (see converters.judge)."""
        gate = self.summary.get("gate") or {}
        if gate.get("not_run"):
            return "unverified"
        return "verified" if gate.get("passed") else ("failed" if gate else "unverified")

    def to_json(self) -> dict:
        return {
            "target": self.target,
            "status": self.status,
            "artifact": str(self.artifact),
            "manifest": str(self.artifact) + ".json",
            "seconds": round(self.seconds, 2),
            **self.summary,
        }


def base_manifest(model, target: Target, inputs: list, outputs: list, quantization: dict, tools: tuple[str, ...]):
    """The manifest fields every target shares; the target adds its own, then ``finalize`` writes it."""
    from devicekit.face.crop import CROP_POLICY
    from devicekit.manifest import Manifest, tool_versions
    from devicekit.verify.one_euro import DEFAULT_PARAMS

    preprocess = model.spec.to_json()
    preprocess["crop"] = dict(CROP_POLICY)  # the face crop policy verify and the apps use
    return Manifest(
        artifact="",
        target=target.name,
        format=target.family,
        model=dict(model.info),
        inputs=inputs,
        outputs=outputs,
        preprocess=preprocess,
        postprocess={"one_euro": dict(DEFAULT_PARAMS)},
        quantization=quantization,
        tools=tool_versions("torch", "onnx", *tools),
    )

