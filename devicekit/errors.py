"""Typed errors. The library raises these; the CLI renders each as one line.

Exit codes: 2 for bad usage or input, 1 when a gate fails, 3 for a device or
environment problem that is not the user's input (device gone, SDK missing),
130 when interrupted (Ctrl-C).
"""

from __future__ import annotations


def first_line(exc: BaseException, limit: int | None = 300, typed: bool = False) -> str:
    """The first line of an exception's message, cut at ``limit`` characters (None: whole); its type name when empty.

    ``typed``: ``"TypeName: line"``. For one-line reasons in messages built from a library's exception."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    line = text.splitlines()[0][:limit]
    return f"{type(exc).__name__}: {line}" if typed else line


class DevicekitError(Exception):
    """Base class: ``message`` is one line; ``hint`` says what to do next."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        text = self.message.strip().replace("\n", " ")
        if self.hint:
            text += f" ({self.hint.strip()})"
        return text


class UsageError(DevicekitError):
    """Bad flags or a bad combination of flags."""


class InputError(DevicekitError):
    """A file the user gave is missing, of the wrong kind, or corrupt."""


class UntrustedCheckpointError(InputError):
    """A checkpoint that needs full unpickling; refused unless trusted."""


class ModelMismatchError(InputError):
    """Weights or input shape do not fit the architecture."""


class UnsupportedOpError(DevicekitError):
    """An op a converter or runtime cannot handle."""

    def __init__(self, op: str, layer: str | None, target: str, hint: str | None = None):
        where = f" in layer {layer}" if layer else ""
        super().__init__(f"{target} cannot convert op {op}{where}", hint)
        self.op, self.layer, self.target = op, layer, target


class ConversionError(DevicekitError):
    """A converter failed for a reason that is not the user's input."""

    exit_code = 1


class GateFailed(DevicekitError):
    """A budget, error or accuracy gate failed (for CI)."""

    exit_code = 1


class DeviceError(DevicekitError):
    """A device is missing, unauthorized, or went away mid-run."""

    exit_code = 3


class Interrupted(DevicekitError):
    """Ctrl-C (SIGINT) during a run; what was measured is kept. Exit 130, as a shell reports SIGINT."""

    exit_code = 130


class EnvironmentMissing(DevicekitError):
    """A tool this step needs is not installed (SDK, Xcode, extras)."""

    exit_code = 3


def require_module(name: str, extra: str = "convert"):
    """Import a heavy optional module or raise a one-line EnvironmentMissing."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:  # pragma: no cover - exercised in the no-torch test
        raise EnvironmentMissing(
            f"this step needs {name!r}, which is not installed ({exc})",
            hint=f"pip install 'devicekit[{extra}]' (install torch==2.13.0 first)",
        ) from None
