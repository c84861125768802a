"""The one registry of what devicekit knows: model formats, targets, platforms and device kinds.

Facts are declared here, as data. The code that implements a fact attaches it from its own layer, so the
core never imports the layers above it (tests/test_layers.py): converters/ attaches a conversion function
to each target (``register_target``), mobile_templates/ a packager and its template tree to each platform
(``attach_platform``), the device modules and devicekit.web their device kinds (``register_device_kind``).
Every dispatch on a format, target, platform or device kind goes through these tables; adding one is one
registration plus its module (docs/architecture.md). The help text and the tables in the docs are made from
them (``describe``).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from .errors import InputError, UsageError


@dataclass(frozen=True)
class Format:
    """A model file format devicekit reads, runs and checks."""

    name: str  # tflite | mlpackage | onnx (ModelFacts.format)
    suffix: str  # .tflite | .mlpackage | .onnx
    directory: bool  # an .mlpackage is a folder
    family: str  # the target family that writes it (the manifest's ``format``): tflite | coreml | onnx
    runtime: str  # what runs it as a phone would: ai-edge-litert (XNNPACK), the MIL interpreter, onnxruntime
    check_runtimes: tuple[str, ...]  # ``check --runtime`` names whose op tables apply
    description: str


@dataclass(frozen=True)
class Target:
    """A conversion target: ``devicekit convert --target NAME``."""

    name: str  # tflite-int8
    family: str  # tflite | coreml
    format: str  # a Format name
    precision: str  # fp32 | fp16 | int8 | w8a8
    needs_calibration: bool
    description: str
    options: type | None = None  # a dataclass of the target's own options (None: it takes none)
    run: Callable[..., Any] | None = None  # (loaded_model, ConvertOptions, calibration) -> ConversionResult

    @property
    def suffix(self) -> str:
        return FORMATS[self.format].suffix


@dataclass(frozen=True)
class Platform:
    """Where an app runs: ``devicekit package --platform NAME`` and the device kinds ``bench`` drives."""

    name: str  # android | ios | web
    formats: tuple[str, ...]  # Format names its app embeds
    bench_suffixes: tuple[str, ...]  # what its benchmark app loads (DEVICE_PROTOCOL.md)
    convert_hint: str  # the command that makes such a model
    description: str
    packager: Callable[..., Any] | None = None  # (artifact, out_dir, **options) -> result; attached by its packager
    template: Path | None = None  # the template tree (its hash keys cached app builds)


@dataclass(frozen=True)
class DeviceKind:
    """A kind of device ``bench`` can run on: ``claims(name)`` says whether a --device value is one of its."""

    name: str  # android | ios | host | web
    platform: str  # the Platform whose app it runs ("host" runs devicekit's own loop)
    lister: Callable[[], list]  # -> [DeviceInfo]
    claims: Callable[[str], bool] | None = None
    opener: Callable[..., Any] | None = None  # (name, **options) -> Device


FORMATS: dict[str, Format] = {}
TARGETS: dict[str, Target] = {}
PLATFORMS: dict[str, Platform] = {}
DEVICE_KINDS: dict[str, DeviceKind] = {}


def _add(table: dict, key: str, value, what: str) -> None:
    if key in table:
        raise RuntimeError(f"{what} {key} registered twice")
    table[key] = value


def register_format(fmt: Format) -> Format:
    _add(FORMATS, fmt.name, fmt, "format")
    return fmt


def register_target(target: Target) -> Target:
    if target.format not in FORMATS:
        raise RuntimeError(f"target {target.name}: unknown format {target.format}")
    _add(TARGETS, target.name, target, "target")
    return target


def register_platform(platform: Platform) -> Platform:
    _add(PLATFORMS, platform.name, platform, "platform")
    return platform


def register_device_kind(kind: DeviceKind) -> DeviceKind:
    _add(DEVICE_KINDS, kind.name, kind, "device kind")
    return kind


def attach_target(name: str, run: Callable[..., Any], options: type | None = None) -> Target:
    """The conversion function of a declared target (converters/ calls this for each of its targets)."""
    t = TARGETS.get(name)
    if t is None:
        raise RuntimeError(f"no target {name} is declared")
    if t.run is not None:
        raise RuntimeError(f"target {name} already has a conversion function")
    TARGETS[name] = t = replace(t, run=run, options=options if options is not None else t.options)
    return t


def attach_platform(name: str, **parts) -> Platform:
    """A platform's packager and template (mobile_templates/ calls this)."""
    p = platform(name)
    PLATFORMS[name] = p = replace(p, **parts)
    return p


def _unknown(what: str, name: str, known) -> UsageError:
    close = difflib.get_close_matches(name, list(known), n=1)
    return UsageError(f"unknown {what} {name!r}", hint=f"did you mean {close[0]}?" if close else f"known: {', '.join(known)}")


def target(name: str) -> Target:
    if name not in TARGETS:
        raise _unknown("target", name, TARGETS)
    return TARGETS[name]


def platform(name: str) -> Platform:
    if name not in PLATFORMS:
        raise _unknown("platform", name, PLATFORMS)
    return PLATFORMS[name]


def format_named(name: str) -> Format:
    if name not in FORMATS:
        raise _unknown("format", name, FORMATS)
    return FORMATS[name]


def format_of(path: str | Path) -> Format:
    """The format of a model file by its suffix; a one-line InputError for anything else."""
    suffix = Path(path).suffix.lower()
    for f in FORMATS.values():
        if f.suffix == suffix:
            return f
    raise InputError(
        f"{Path(path).name}: unsupported model file type {suffix or '(no suffix)'!r}",
        hint="supported: " + ", ".join(f.suffix for f in FORMATS.values()),
    )


def platforms_for(fmt: Format) -> list[Platform]:
    return [p for p in PLATFORMS.values() if fmt.name in p.formats]


def packager(platform_name: str) -> Callable[..., Any]:
    """The platform's packager (bench's app builds and the browser device render through it); one line when no
    plug-in attached one."""
    from .errors import EnvironmentMissing

    p = platform(platform_name)
    if p.packager is None:
        raise EnvironmentMissing(f"no {p.name} packager is loaded", hint="import devicekit.mobile_templates (the devicekit command does)")
    return p.packager


def packager_for(platform_name: str, artifact: str | Path) -> Platform:
    """The platform, checked: it embeds the artifact's format and has a packager; else one clear line."""
    p = platform(platform_name)
    fmt = format_of(artifact)
    if fmt.name not in p.formats:
        others = [q.name for q in platforms_for(fmt) if q.packager is not None]
        where = f"; {fmt.suffix} goes to {', '.join(others)}" if others else f"; no app platform embeds {fmt.suffix} models"
        raise InputError(
            f"{p.name} apps embed {' or '.join(FORMATS[f].suffix for f in p.formats)} models, not {Path(artifact).name}{where}", hint=p.convert_hint
        )
    packager(p.name)
    return p


def help_text(table: str) -> str:
    """The command-line help for a choice, from the registry (``--target``, ``--platform``, ``check --runtime``)."""
    if table == "targets":
        return ", ".join(TARGETS) + ", or all (every target installed here); repeatable; default tflite-int8"
    if table == "platforms":
        return ", ".join(p.name for p in PLATFORMS.values() if p.name != "host") + "."
    if table == "runtimes":
        parts = [f"{', '.join(f.check_runtimes)} ({f.suffix})" for f in FORMATS.values() if f.check_runtimes]
        return "Gate: " + "; ".join(parts).replace("litert,", "litert[>=X.Y],", 1) + ". Repeatable."
    raise ValueError(table)


def describe(table: str) -> str:
    """A Markdown table of one registry table (docs/architecture.md is made from these)."""
    rows: list[tuple[str, ...]]
    if table == "targets":
        rows = [("target", "format", "precision", "calibration", "what it is")]
        rows += [(t.name, FORMATS[t.format].suffix, t.precision, "yes" if t.needs_calibration else "no", t.description) for t in TARGETS.values()]
    elif table == "formats":
        rows = [("format", "suffix", "runs in", "check --runtime")]
        rows += [(f.name, f.suffix, f.runtime, ", ".join(f.check_runtimes) or "-") for f in FORMATS.values()]
    elif table == "platforms":
        rows = [("platform", "embeds", "bench loads", "what it is")]
        rows += [(p.name, ", ".join(FORMATS[f].suffix for f in p.formats), ", ".join(p.bench_suffixes), p.description) for p in PLATFORMS.values()]
    else:
        raise ValueError(table)
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(out)


# ---- the declarations -------------------------------------------------------------------------------------

for _f in (
    Format(
        "tflite",
        ".tflite",
        False,
        "tflite",
        "ai-edge-litert with XNNPACK",
        ("litert", "xnnpack", "gpu", "nnapi"),
        "LiteRT flatbuffer (Android, the web, the host)",
    ),
    Format(
        "mlpackage",
        ".mlpackage",
        True,
        "coreml",
        "devicekit's MIL reference interpreter (CoreML predict needs macOS)",
        ("coreml-ane",),
        "CoreML ML Program package (iOS)",
    ),
    Format("onnx", ".onnx", False, "onnx", "onnxruntime", (), "ONNX graph (the host; convert's intermediate)"),
):
    register_format(_f)

for _t in (
    Target("tflite-fp32", "tflite", "tflite", "fp32", False, "TFLite, float32 weights and activations"),
    Target("tflite-fp16", "tflite", "tflite", "fp16", False, "TFLite, float16 weights (dequantised at load or run on GPU in fp16)"),
    Target("tflite-int8", "tflite", "tflite", "int8", True, "TFLite, full-integer int8 calibrated on real images; float tail per policy"),
    Target("coreml-fp16", "coreml", "mlpackage", "fp16", False, "CoreML ML Program, fp16 weights and compute (iOS17+)"),
    Target("coreml-int8", "coreml", "mlpackage", "int8", False, "CoreML ML Program, int8 weights (linear_quantize_weights), fp16 compute"),
    Target(
        "coreml-w8a8",
        "coreml",
        "mlpackage",
        "w8a8",
        True,
        "CoreML ML Program, int8 weights and activations calibrated on real images in the MIL interpreter; "
        "float activations where the gate needs them",
    ),
):
    register_target(_t)

for _p in (
    Platform(
        "android",
        ("tflite",),
        (".tflite",),
        "devicekit convert MODEL --target tflite-int8",
        "Android Studio project + drop-in module (LiteRT CompiledModel, CameraX)",
    ),
    Platform(
        "ios",
        ("mlpackage",),
        (".mlpackage", ".mlmodelc"),
        "devicekit convert MODEL --target coreml-fp16",
        "Xcode project + Swift package (CoreML, AVFoundation)",
    ),
    Platform(
        "web",
        ("tflite",),
        (".tflite",),
        "devicekit convert MODEL --target tflite-int8 (LiteRT.js runs .tflite)",
        "static web app (LiteRT.js in the browser)",
    ),
    Platform("host", ("tflite", "onnx"), (".tflite", ".onnx"), "bench a .tflite or .onnx on the host", "this machine, devicekit's own loop (no app)"),
):
    register_platform(_p)
