"""The one small interface every target implements.

A target is data declared in devicekit.registry (name, family, format, precision, options) plus the
function this layer attaches to it (``registry.attach_target``) that turns a loaded model into an
artifact. ``convert`` dispatches exhaustively over the registry: no if-chains over format names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devicekit.config import InputSpec
from devicekit.errors import UsageError
from devicekit.registry import TARGETS, Target  # noqa: F401  (re-exported: converters.TARGETS)

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
    check: bool = True  # run `devicekit check` on each artifact
    verify: bool = True  # the quick verify on faces
    verify_images: Path | str | None = None
    max_nme_increase: float | None = None
    # options of the targets' own (their dataclasses: TFLiteOptions, CoreMLOptions): name -> value as given;
    # resolve_options() validates them for every requested target before any work, and refuses the ones
    # that apply to none of them
    target_options: dict = field(default_factory=dict)
    resolved: dict = field(default_factory=dict)  # target name -> its options dataclass (set by convert)

    def __post_init__(self):
        if self.calib_count < 1:
            raise UsageError("--calib-count must be at least 1")
        if self.calib_min < 1:
            raise UsageError("--calib-min must be at least 1")
        if self.backend not in ("onnx2tf", "litert-torch"):
            raise UsageError(f"unknown --backend {self.backend!r} (known: onnx2tf, litert-torch)")


def resolve_targets(names: list[str]) -> list[Target]:
    """Registry targets by name (devicekit.registry). ``all``: every target whose converter is installed; a named
    target whose converter is not (CoreML without coremltools) or an unknown name is a one-line usage error."""
    from devicekit.registry import target

    out: list[Target] = []
    for n in names:
        if n == "all":
            out += [t for t in TARGETS.values() if t.run is not None and t not in out]
            continue
        t = target(n)
        if t.run is None:
            raise UsageError(f"target {n} needs the {t.family} converter, which is not installed here",
                             hint="pip install 'devicekit[coreml]'" if t.family == "coreml" else "pip install 'devicekit[convert]'")
        if t not in out:
            out.append(t)
    if not out:
        raise UsageError("no target given (use --target tflite-int8, ...)")
    return out


@dataclass(frozen=True)
class TFLiteOptions:
    """tflite-* targets' own options."""

    keep_names: bool = False  # keep TensorFlow's debug names of intermediate tensors (larger file)

    def for_target(self, name: str) -> "TFLiteOptions":
        return self


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def resolve_options(targets: list[Target], given: dict) -> dict[str, Any]:
    """Each target's options dataclass built from ``given`` and validated, before any conversion starts.
    An option no requested target takes is a usage error naming the targets that do."""
    import dataclasses

    given = {k: v for k, v in (given or {}).items() if v is not None}
    used: set[str] = set()
    out: dict[str, Any] = {}
    for t in targets:
        cls = t.options
        if cls is None:
            out[t.name] = None
            continue
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in given.items() if k in names}
        used |= set(kw)
        out[t.name] = cls(**kw).for_target(t.name)
    for k in sorted(set(given) - used):
        takers = [t.name for t in TARGETS.values() if t.options is not None
                  and k in {f.name for f in dataclasses.fields(t.options)}]
        raise UsageError(f"{_flag(k)} does not apply to {', '.join(t.name for t in targets)}",
                         hint=f"it is an option of {', '.join(takers)}" if takers else "no target takes it")
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
    from devicekit.face.one_euro import DEFAULT_PARAMS
    from devicekit.manifest import Manifest, tool_versions

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

