"""Configuration: the model input spec and ``devicekit.toml``.

Configs are frozen dataclasses validated when built: contradictions are
errors, never silent rewrites. Unknown keys in ``devicekit.toml`` are errors.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError, UsageError

COLORS = ("rgb", "bgr", "gray")


def parse_floats(text: str | float | int | list | tuple | None, what: str = "value") -> tuple[float, ...] | None:
    """'127.5' or '123,117,104' or [1, 2, 3] -> tuple of floats."""
    if text is None:
        return None
    if isinstance(text, (int, float)):
        return (float(text),)
    if isinstance(text, (list, tuple)):
        items = list(text)
    else:
        items = [t for t in str(text).replace(" ", "").split(",") if t != ""]
    try:
        values = tuple(float(v) for v in items)
    except (TypeError, ValueError):
        raise UsageError(f"{what} must be a number or comma-separated numbers, got {text!r}") from None
    if not values:
        raise UsageError(f"{what} is empty")
    return values


def parse_shape(text: str | list | tuple | None) -> tuple[int, ...] | None:
    """'1,3,128,128' -> (1, 3, 128, 128), the PyTorch NCHW layout."""
    if text is None:
        return None
    items = text if isinstance(text, (list, tuple)) else str(text).replace("x", ",").split(",")
    try:
        shape = tuple(int(v) for v in items)
    except (TypeError, ValueError):
        raise UsageError(f"--input-shape must be N,C,H,W integers, got {text!r}") from None
    if len(shape) != 4 or any(d <= 0 for d in shape):
        raise UsageError(f"--input-shape must be four positive integers N,C,H,W, got {text!r}")
    return shape


@dataclass(frozen=True)
class InputSpec:
    """How pixels become the model input: ``input = (pixel - mean) / std``.

    ``shape`` is NCHW (PyTorch). ``mean``/``std`` are in 0-255 pixel units,
    one value or one per channel. ``color`` is the channel order the model
    expects.
    """

    shape: tuple[int, int, int, int] = (1, 3, 128, 128)
    mean: tuple[float, ...] = (127.5,)
    std: tuple[float, ...] = (128.0,)
    color: str = "rgb"

    def __post_init__(self):
        n, c, h, w = self.shape
        if self.color not in COLORS:
            raise UsageError(f"--color must be one of {', '.join(COLORS)}, got {self.color!r}")
        if self.color == "gray" and c != 1:
            raise UsageError(f"--color gray needs 1 input channel, the input shape has {c}")
        if self.color in ("rgb", "bgr") and c != 3:
            raise UsageError(f"--color {self.color} needs 3 input channels, the input shape has {c}")
        for name, vals in (("--mean", self.mean), ("--std", self.std)):
            if len(vals) not in (1, c):
                raise UsageError(f"{name} needs 1 or {c} values, got {len(vals)}")
        if any(s == 0 for s in self.std):
            raise UsageError("--std must not be zero")

    @property
    def channels(self) -> int:
        return self.shape[1]

    @property
    def height(self) -> int:
        return self.shape[2]

    @property
    def width(self) -> int:
        return self.shape[3]

    def per_channel(self, vals: tuple[float, ...]) -> list[float]:
        return list(vals) * self.channels if len(vals) == 1 else list(vals)

    def normalize(self, pixels):
        """NHWC uint8/float pixels (0-255, already in ``color`` order) -> NCHW float32 model input."""
        import numpy as np

        x = np.asarray(pixels, dtype=np.float32)
        if x.ndim == 3:
            x = x[None]
        mean = np.asarray(self.per_channel(self.mean), np.float32)
        std = np.asarray(self.per_channel(self.std), np.float32)
        x = (x - mean) / std
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def with_overrides(self, **kw: Any) -> "InputSpec":
        kw = {k: v for k, v in kw.items() if v is not None}
        return dataclasses.replace(self, **kw) if kw else self

    def to_json(self) -> dict:
        return {
            "shape": list(self.shape),
            "layout": "NCHW",
            "mean": self.per_channel(self.mean),
            "std": self.per_channel(self.std),
            "color": self.color,
            "pixel_range": [0, 255],
            "formula": "input = (pixel - mean) / std",
        }

    @classmethod
    def from_json(cls, d: dict) -> "InputSpec":
        return cls(shape=tuple(d["shape"]), mean=tuple(d["mean"]), std=tuple(d["std"]), color=d["color"])


# devicekit.toml: sections and their keys. Unknown keys are errors.
TOML_SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "model": {"source": str},
    "input": {"shape": (list, str), "mean": (list, float, int, str), "std": (list, float, int, str), "color": str},
    "convert": {
        "targets": (list, str),
        "output": str,
        "calib": str,
        "calib_count": int,
        "backend": str,
        "policy": str,
        "max_error": (float, int),
        "verify": bool,
        "gate": dict,  # {"int8": {"rel_l2": 0.1}} or {"int8.rel_l2": 0.1}: converters.judge
        "no_gate": bool,
        "min_int8_share": (float, int),
        "calib_min": int,
    },
    "check": {"budgets": list, "runtimes": list, "require": list},
    "verify": {"images": str, "annotations": str, "video": str, "max_nme_increase": (float, int), "max_fr_increase": (float, int)},
    "bench": {
        "device": str,
        "frames": int,
        "warmup": int,
        "threads": int,
        "delegate": str,
        "timeout": (float, int),
        "team": str,
        "golden": bool,
        "compute_units": str,
    },
}


# Keys a config file may not hold: a devicekit.toml in a cloned repository must never widen trust. What a
# command imports, executes or fully unpickles comes from its command line only.
COMMAND_LINE_ONLY = {
    ("model", "trust_checkpoint"): "--trust-checkpoint (full unpickling runs code from the file)",
    ("model", "arch"): "--arch module:Class (it imports and runs that module)",
    ("model", "arch_args"): "--arch-args (the keyword arguments of --arch's class)",
}


def _type_ok(value: Any, expected) -> bool:
    """isinstance, except that a TOML boolean is not a number (``frames = true`` is an error, not 1)."""
    kinds = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool) and bool not in kinds:
        return False
    return isinstance(value, kinds)


@dataclass(frozen=True)
class ProjectConfig:
    """The parsed ``devicekit.toml`` (empty when there is none)."""

    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    path: Path | None = None
    fleet: tuple["FleetEntry", ...] = ()  # [[fleet]] entries, validated

    def get(self, section: str, key: str, default: Any = None) -> Any:
        return self.sections.get(section, {}).get(key, default)


def load_project_config(path: str | Path | None = None) -> ProjectConfig:
    """Read ``devicekit.toml`` (the given path, or the working directory's)."""
    p = Path(path) if path else Path.cwd() / "devicekit.toml"
    if not p.exists():
        if path:
            raise InputError(f"config file not found: {p}")
        return ProjectConfig()
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: not valid TOML ({exc})") from None
    fleet = parse_fleet(data.pop("fleet", []), p)  # [[fleet]]: an array of tables, checked on its own
    for section, values in data.items():
        if section not in TOML_SCHEMA:
            raise UsageError(f"{p}: unknown section [{section}] (known: {', '.join(TOML_SCHEMA)}, [[fleet]])")
        if not isinstance(values, dict):
            raise UsageError(f"{p}: [{section}] must be a table")
        for key, value in values.items():
            if (section, key) in COMMAND_LINE_ONLY:
                raise UsageError(
                    f"{p}: {section}.{key} cannot be set in a config file (a devicekit.toml must not widen trust)",
                    hint=f"pass {COMMAND_LINE_ONLY[section, key]} on the command line",
                )
            if key not in TOML_SCHEMA[section]:
                raise UsageError(f"{p}: unknown key {section}.{key} (known: {', '.join(TOML_SCHEMA[section])})")
            expected = TOML_SCHEMA[section][key]
            if not _type_ok(value, expected):
                want = " or ".join(t.__name__ for t in (expected if isinstance(expected, tuple) else (expected,)))
                raise UsageError(f"{p}: {section}.{key} has the wrong type ({type(value).__name__}, expected {want})")
    return ProjectConfig(sections=data, path=p, fleet=fleet)


# --- [[fleet]]: the devices `devicekit bench --fleet NAME|TAG` runs on ------------------------------

FLEET_KEYS = {"device": "serial or host:port", "name": "a unique name", "tags": "a list of tags"}
_HOST_PORT = re.compile(r"([A-Za-z0-9.\-]+):(\d{1,5})")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,63}")


@dataclass(frozen=True)
class FleetEntry:
    """One ``[[fleet]]`` entry: the device (adb serial or ``host:port``), its name (default: the device) and tags."""

    device: str
    name: str
    tags: tuple[str, ...] = ()


def parse_fleet(entries: Any, path: Path | str = "devicekit.toml") -> tuple[FleetEntry, ...]:
    """``[[fleet]]`` tables -> entries; a bad one is a one-line UsageError naming the entry and what is wrong."""
    if not isinstance(entries, list):
        raise UsageError(f"{path}: fleet must be an array of tables ([[fleet]] entries)")
    out: list[FleetEntry] = []
    for k, e in enumerate(entries, start=1):
        where = f"{path}: [[fleet]] entry {k}"
        if not isinstance(e, dict):
            raise UsageError(f"{where} must be a table with device, name, tags")
        unknown = sorted(set(e) - set(FLEET_KEYS))
        if unknown:
            raise UsageError(f"{where}: unknown key {unknown[0]} (known: {', '.join(FLEET_KEYS)})")
        device, name, tags = e.get("device"), e.get("name", e.get("device")), e.get("tags", [])
        if not isinstance(device, str) or not device.strip():
            raise UsageError(f"{where}: device is required ({FLEET_KEYS['device']}, e.g. 192.168.1.20:5555)")
        if ":" in device:
            m = _HOST_PORT.fullmatch(device)
            if not m or not 1 <= int(m.group(2)) <= 65535:
                raise UsageError(f"{where}: device {device!r} is not host:port (a host name or address, a port 1-65535)")
        elif not _NAME.fullmatch(device):
            raise UsageError(f"{where}: device {device!r} is not an adb serial (letters, digits, . _ -)")
        if "name" in e and (not isinstance(name, str) or not _NAME.fullmatch(name) or name == "all"):
            raise UsageError(f"{where}: name {name!r} must be letters, digits, . _ - (at most 64) and not 'all'")
        if not isinstance(tags, list) or not all(isinstance(t, str) and _NAME.fullmatch(t) for t in tags):
            raise UsageError(f"{where}: tags must be a list of words (letters, digits, . _ -), got {tags!r}")
        for prev in out:
            if prev.name == name:
                raise UsageError(f"{where}: duplicate name {name!r} (names must be unique)")
            if prev.device == device:
                raise UsageError(f"{where}: device {device} is already entry {prev.name!r} (one run per device at a time)")
        if name in {t for prev in out for t in prev.tags} or any(prev.name in tags for prev in out):
            raise UsageError(f"{where}: {name!r} is used both as a name and a tag (--fleet could not tell them apart)")
        out.append(FleetEntry(device, name, tuple(dict.fromkeys(tags))))
    return tuple(out)


def select_fleet(fleet: tuple[FleetEntry, ...], key: str, path: Path | str | None = None) -> list[FleetEntry]:
    """``--fleet NAME|TAG``: the entry with that name, or every entry with that tag."""
    where = path or "devicekit.toml"
    if not fleet:
        raise UsageError(
            f"--fleet {key}: {where} has no [[fleet]] entries", hint='add [[fleet]] tables (device = "HOST:PORT", name = "...", tags = ["..."])'
        )
    named = [e for e in fleet if e.name == key]
    hits = named or [e for e in fleet if key in e.tags]
    if not hits:
        tags = sorted({t for e in fleet for t in e.tags})
        raise UsageError(
            f"--fleet {key}: no [[fleet]] entry in {where} has that name or tag "
            f"(names: {', '.join(e.name for e in fleet)}; tags: {', '.join(tags) or 'none'})"
        )
    return hits
