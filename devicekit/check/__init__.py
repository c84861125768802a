"""`devicekit check` as a library: size budgets, op compatibility, int8 purity, MACs and activation memory.

``run_checks(path, budgets=..., runtimes=..., require=...)`` reads the model
file with a light reader (no torch, no tensorflow) and runs one pure check
per module on the facts:

- size.py    file/APK size, budget shares, per-layer weights, what-ifs
- ops.py     ops with versions per runtime and delegate (rules/*.json)
- int8.py    float ops, QUANTIZE/DEQUANTIZE islands, float share of MACs
- memory.py  arena plan of activations, largest tensors, extra-pool what-if
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

from ..errors import UsageError
from ..modelfile.facts import ModelFacts
from . import rules
from .graph import all_macs
from .int8 import check_int8, int8_facts
from .memory import check_memory, memory_facts
from .ops import check_ops
from .result import CheckReport, CheckResult
from .size import check_size, size_facts

__all__ = ["run_checks", "check_facts", "CheckReport", "CheckResult", "REQUIREMENTS"]

REQUIREMENTS = ("int8",)


def _norm_budgets(budgets) -> dict[str, int]:
    if budgets is None:
        return rules.budgets(None)
    if isinstance(budgets, Mapping):
        return {str(k): int(v) for k, v in budgets.items()}
    if isinstance(budgets, str):
        budgets = [budgets]
    return rules.budgets(list(budgets))


def _norm_require(require) -> set[str]:
    if not require:
        return set()
    req = {require} if isinstance(require, str) else set(require)
    bad = req - set(REQUIREMENTS)
    if bad:
        raise UsageError(f"unknown requirement {sorted(bad)[0]!r}", hint=f"known: {', '.join(REQUIREMENTS)}")
    return req


def _norm_runtimes(runtimes) -> list[str]:
    """Runtime gates as given, with a version that is a version: ``litert>=x.y`` is a usage error, not a gate failure."""
    import re

    out = [runtimes] if isinstance(runtimes, str) else list(runtimes or [])
    for spec in out:
        _, sep, version = str(spec).replace(">=", "@").partition("@")
        if sep and not re.fullmatch(r"\d{1,4}(\.\d{1,4}){0,3}", version.strip()):
            raise UsageError(f"--runtime {spec!r}: the version must be numbers such as 2.10 or 2.16.1, got {version!r}")
    return out


def check_facts(facts: ModelFacts, budgets=None, runtimes: Iterable[str] | None = None, require=None,
                memory_limit: int | None = None, measured: dict | None = None, tools: dict | None = None) -> CheckReport:
    """All checks on already-read model facts (pure: no file access beyond what the facts hold).

    ``measured``: LiteRT's verdict on the file (devicekit.runtime.probe), when it was asked.
    ``tools``: the onnx checker / onnxruntime or coremltools verdict (runtime.verdict), when it was asked.
    """
    budget_map = _norm_budgets(budgets)
    req = _norm_require(require)
    size = size_facts(facts)
    results: list[CheckResult] = check_size(facts, budget_map, size)
    op_results, table = check_ops(facts, _norm_runtimes(runtimes), measured)
    results += op_results
    results += _tools_result(tools) + _xnnpack_failure(facts, measured)
    i8 = int8_facts(facts)
    results += check_int8(facts, i8, "int8" in req)
    mem = memory_facts(facts)
    results += check_memory(facts, mem, memory_limit)
    macs = all_macs(facts)
    per_op = sorted(((m, op) for m, op in zip(macs, facts.ops) if m), key=lambda x: -x[0])[:10]
    compute = {"total_macs": sum(macs),
               "top_ops": [{"op": op.index, "type": op.op, "macs": m} for m, op in per_op],
               "per_op": [[op.index, op.op, m] for m, op in zip(macs, facts.ops) if m]}
    results.append(CheckResult("compute", "info", value=sum(macs), message=f"{sum(macs) / 1e6:.1f}M MACs in {len(facts.ops)} ops"))
    io = [{"name": facts.tensors[i].name, "shape": list(facts.tensors[i].shape), "dtype": facts.tensors[i].dtype,
           "quantization": {"scale": facts.tensors[i].scale[0], "zero_point": facts.tensors[i].zero_point[0]}
           if facts.tensors[i].scale and facts.tensors[i].zero_point else None}
          for i in list(facts.inputs) + list(facts.outputs) if 0 <= i < len(facts.tensors)]
    return CheckReport(
        path=facts.path, format=facts.format, results=results, notes=list(facts.notes),
        sections={"size": size, "ops": table, "int8": i8, "memory": mem, "compute": compute,
                  "io": {"inputs": io[: len(facts.inputs)], "outputs": io[len(facts.inputs):]},
                  "model": {k: v for k, v in facts.metadata.items() if k != "entries"}
                  | {"ops": len(facts.ops), "tensors": len(facts.tensors),
                     "other_subgraph_ops": len(facts.other_ops)}},
    )


def _xnnpack_failure(facts: ModelFacts, measured: dict | None) -> list[CheckResult]:
    """A model with custom ops the builtin kernels lack (MediaPipe's, which XNNPACK runs) is only a warning, unless
    XNNPACK loaded it and then could not allocate or run it for another reason: then LiteRT runs it nowhere here,
    and the report fails instead of passing on the custom-op warning."""
    if not measured:
        return []
    b, x = measured.get("builtin", {}), measured.get("xnnpack", {})
    if b.get("invoke") or x.get("invoke") or not x.get("load") or "custom op" in str(x.get("error", "")):
        return []
    if "custom op" not in str(b.get("error", "")):
        return []  # ops.py's runtime:litert already fails it
    what = "allocate tensors for" if not x.get("allocate") else "run"
    return [CheckResult("runtime:litert", "fail", value=what, gate=True,
                        message=f"will not run: with XNNPACK (the default resolver) LiteRT cannot {what} it either "
                                f"({x.get('error')})",
                        hint="the file is damaged or its shapes do not fit its ops; reconvert it",
                        details={"source": "measured: ai-edge-litert loaded the file in a child process (devicekit.runtime.probe)"})]


def _tools_result(tools: dict | None) -> list[CheckResult]:
    """onnxruntime's (or coremltools') measured verdict as a check row: a file that loads in the checker but not
    in the runtime fails the report (a gate) instead of passing silently."""
    if not tools or not tools.get("runtime"):
        return []
    name = tools["runtime"].split()[0]
    src = {"source": f"measured: {tools['runtime']} in a child process (devicekit.runtime.verdict)"}
    if tools.get("ok"):
        return [CheckResult(f"runtime:{name}", "pass", value=tools.get("stage"), details=src,
                            message=f"{tools['runtime']} loads it" + (" and runs it on zeros" if tools.get("stage") == "run" else ""))]
    what = {"session": "load", "run": "run"}.get(tools.get("stage"), tools.get("stage"))
    return [CheckResult(f"runtime:{name}", "fail", value=what, gate=True, details=src,
                        message=f"will not run: {tools['runtime']} cannot {what} it ({tools.get('error')})",
                        hint="fix or re-export the model; devicekit convert checks what it writes")]


def run_checks(path: str | Path, budgets=None, runtimes: Iterable[str] | None = None, require=None,
               memory_limit: int | None = None) -> CheckReport:
    """Check one model file (.tflite, .onnx or .mlpackage).

    budgets: None (play-apk), a list of ``NAME`` / ``NAME=BYTES`` strings, or a {name: bytes} mapping.
    runtimes: gates such as ``["litert>=2.10", "xnnpack", "gpu"]``; a listed runtime that cannot run
        every op fails the report. All runtimes are evaluated (as warnings) either way.
    require: ``"int8"`` (or a list of requirements) to fail when any op runs in float.
    memory_limit: optional bytes limit on peak activation memory (a gate).
    Raises InputError for unreadable files and UsageError for bad options; returns a CheckReport
    whose ``ok`` is False when a requested gate failed.
    """
    from ..runtime.validate import validate_model

    _norm_runtimes(runtimes)  # usage errors before the file is read
    _norm_require(require)
    _norm_budgets(budgets)
    v = validate_model(path)  # the bounds-checked reader, then LiteRT in a child: a damaged file is refused here
    return check_facts(v.facts, budgets=budgets, runtimes=runtimes, require=require, memory_limit=memory_limit,
                       measured=v.litert, tools=v.tools)
