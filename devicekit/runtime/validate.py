"""The one validation every command runs before it uses a model file (check, verify, bench).

.tflite: the light reader's bounds-checked walk (``read_model``) first: a file whose structure points outside
itself is refused before any runtime sees it. Then LiteRT's own verdict from a child process
(``devicekit.runtime.probe``): LiteRT's Python interpreter runs no flatbuffer verifier, so a damaged file can
take the process down (SIGSEGV) or be read out of bounds. A file LiteRT refuses at load time for a reason other
than an op it lacks, or one it crashes or hangs on, is refused here as damaged (``InputError``, exit 2).

.onnx: the onnx checker (full check) and onnxruntime in a child process first (``verdict.ask``; their C++ can
crash on a hostile graph), then the reader. .mlpackage: the reader (protobuf and JSON, pure Python), then
coremltools' own program loader in a child. A file the checker or loader refuses is bad input.

What loads but will not allocate or run is left to the caller: ``check`` reports it (a gate failure), ``bench``
and ``verify`` refuse it with the runtime's reason. Only after this passes does any command load the file into
an interpreter in its own process.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..modelfile import read_model
from ..modelfile.facts import ModelFacts

# LiteRT load errors that are about the runtime, not the file: an op this LiteRT lacks (custom ops the app
# registers, builtins newer than ai-edge-litert here). Anything else at load time means a damaged file.
OP_ERRORS = re.compile(r"unresolved custom op|Didn't find op for builtin opcode|builtin_code out of range|"
                       r"Op type not registered", re.I)


@dataclass
class Validated:
    facts: ModelFacts
    litert: dict | None = None  # devicekit.runtime.probe's result for a .tflite
    tools: dict | None = None  # verdict.ask's result for an .onnx / .mlpackage

    def runs(self, delegate: str = "xnnpack") -> tuple[bool, str | None]:
        """(True, None) when the runtime loaded, allocated and ran the file (a .tflite with ``delegate``: xnnpack
        = the default resolver a phone's CPU path uses, cpu = the builtin kernels); else (False, its reason)."""
        if self.tools is not None:
            if self.tools.get("ok"):
                return True, None
            stage = str(self.tools.get("stage"))
            return False, f"{self.tools.get('runtime') or 'the runtime'} cannot {_STAGES.get(stage, 'run')} it ({self.tools.get('error')})"
        if self.litert is None:
            return True, None
        r = self.litert.get("xnnpack" if delegate == "xnnpack" else "builtin", {})
        if r.get("invoke"):
            return True, None
        step = "load" if not r.get("load") else ("allocate tensors for" if not r.get("allocate") else "run")
        if delegate == "xnnpack" and self.litert.get("builtin", {}).get("invoke"):
            return False, (f"XNNPACK, LiteRT's default CPU delegate on phones, cannot {step} it ({r.get('error')}); "
                           "--delegate cpu runs LiteRT's builtin kernels")
        return False, f"LiteRT cannot {step} it ({r.get('error') or 'no reason given'})"


_STAGES = {"session": "load", "run": "run"}
WHO = {"checker": "the onnx checker refuses it", "loader": "coremltools' loader refuses it",
       "crashed": "its checker crashed on it", "timeout": "its checker hung on it"}


def damaged_reason(measured: dict) -> str | None:
    """Why LiteRT's verdict says the file is damaged (None when it loads, or fails only for want of an op)."""
    verdict = measured.get("verdict")
    if verdict in ("crashed", "timeout"):
        return measured.get("error") or f"LiteRT {verdict} on it"
    b, x = measured.get("builtin", {}), measured.get("xnnpack", {})
    if b.get("load") or x.get("load"):
        return None
    errors = [e for e in (b.get("error"), x.get("error")) if e]
    if any(OP_ERRORS.search(e) for e in errors):
        return None
    return f"LiteRT refuses to load it: {errors[0] if errors else 'no reason given'}"


def validate_model(path: str | Path, runtime: bool = True) -> Validated:
    """Read ``path`` with the bounds-checked reader and, for a .tflite, ask LiteRT in a child process.

    Raises ``InputError`` (exit 2) for a missing, unreadable or damaged file. ``runtime=False`` skips the LiteRT
    child (for callers that only need the structure).
    """
    from ..modelfile import check_kind

    p, suffix = check_kind(path)
    if suffix == ".onnx" and runtime:  # the C++ checker in a child before the in-process reader's shape inference
        tools = _ask_tools(p, "ONNX model")
        return Validated(read_model(p), tools=tools)
    facts = read_model(p)
    if facts.format == "mlpackage" and runtime:
        return Validated(facts, tools=_ask_tools(p, "CoreML package"))
    if facts.format != "tflite" or not runtime:
        return Validated(facts)
    from .probe import probe

    measured = probe(path)
    why = damaged_reason(measured)
    if why:
        raise InputError(f"{Path(path).name}: damaged TFLite file: {why}",
                         hint="the file is corrupt or truncated; convert or download it again")
    return Validated(facts, measured)


def _ask_tools(p: Path, what: str) -> dict:
    """The format tools' verdict; InputError when the checker / loader refuses the file or dies on it."""
    from .verdict import ask

    v = ask(p)
    if not v.get("ok") and v.get("stage") in WHO:
        raise InputError(f"{p.name}: invalid {what}: {WHO[v['stage']]}: {v.get('error')}",
                         hint="the file is damaged or not what its name says; export or convert it again")
    return v
