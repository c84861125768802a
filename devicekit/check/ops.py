"""Ops: every op with its version, checked against each runtime and delegate from the rule tables.

Runtimes: ``litert`` (builtins with their minimum runtime version, Flex and
custom ops), ``xnnpack``, ``gpu``, ``nnapi`` for .tflite; ``coreml-ane`` for
.mlpackage. ``litert>=X.Y`` sets the oldest runtime the app ships.
"""

from __future__ import annotations

from collections import Counter

from ..errors import UsageError
from ..modelfile.facts import ModelFacts, Op
from ..registry import FORMATS
from . import rules
from .graph import all_macs
from .result import CheckResult

INT_TYPES = {"int8", "uint8", "int16"}


def parse_runtime(spec: str) -> tuple[str, str | None]:
    name, _, version = spec.replace(">=", "@").partition("@")
    name = name.strip().lower()
    known = {r for f in FORMATS.values() for r in f.check_runtimes}
    if name not in known:
        import difflib

        close = difflib.get_close_matches(name, known, n=1)
        raise UsageError(f"unknown runtime {spec!r}", hint=f"did you mean {close[0]}?" if close else f"known: {', '.join(sorted(known))}")
    if version and name != "litert":
        raise UsageError(f"runtime {name} takes no version ({spec!r})")
    return name, (version or None)


def _vkey(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split(".") if x.isdigit())


def min_runtime(op: Op) -> str | None:
    table = rules.load("litert_builtin")["min_runtime"]
    return table.get(op.op, {}).get(str(op.version))


def _act_dtype(facts: ModelFacts, op: Op) -> str:
    ts = [facts.tensor(i) for i in op.inputs + op.outputs if i >= 0]
    acts = [t.dtype for t in ts if t is not None and not t.const]
    if any(d in ("float32", "float16") for d in acts):
        return "float32"
    return "int8" if any(d in INT_TYPES for d in acts) else (acts[0] if acts else "float32")


def _xnnpack(facts: ModelFacts, op: Op, table: dict) -> str | None:
    """None when XNNPACK takes the op, else the reason it does not."""
    if op.kind == "custom":
        return None if op.op in table["custom"] else "custom op"
    if op.kind == "flex":
        return "Flex op"
    dt = _act_dtype(facts, op)
    allowed = table["int8"] if dt == "int8" else table["float32"]
    if op.op not in allowed:
        return f"{op.op} not taken for {dt}"
    if any(d < 0 for i in op.inputs + op.outputs if i >= 0 and facts.tensor(i) for d in facts.tensor(i).shape):
        return "dynamic shape"
    return None


def _gpu(facts: ModelFacts, op: Op, table: dict) -> str | None:
    if op.kind == "custom":
        return None if op.op in table["custom"] else "custom op"
    if op.kind == "flex":
        return "Flex op"
    rule = table["ops"].get(op.op)
    if rule is None:
        return f"{op.op} not supported"
    if "max_version" in rule and op.version > rule["max_version"]:
        return f"{op.op} v{op.version} > v{rule['max_version']}"
    for i in op.inputs + op.outputs:
        t = facts.tensor(i) if i >= 0 else None
        if t is not None and not t.const and len(t.shape) > table["max_rank"]:
            return f"rank-{len(t.shape)} tensor"
    return None


def op_table(facts: ModelFacts, measured: dict | None = None) -> list[dict]:
    """One row per (op, version, kind). The xnnpack column is LiteRT's own answer when ``measured``, else the rule table's."""
    macs = all_macs(facts)
    left = None
    if measured and measured.get("verdict") in ("delegated", "partly"):
        left = {o["index"] for o in measured.get("xnnpack", {}).get("left", [])}
    xt, gt = (rules.load("xnnpack"), rules.load("gpu")) if facts.format == "tflite" else (None, None)
    rows: dict[tuple, dict] = {}
    for op, m in zip(facts.ops, macs):
        key = (op.op, op.version, op.kind)
        r = rows.setdefault(key, {"op": op.op, "version": op.version, "kind": op.kind, "count": 0, "macs": 0,
                                  "indices": []})
        r["count"] += 1
        r["macs"] += m
        if len(r["indices"]) < 20:
            r["indices"].append(op.index)
        if facts.format == "tflite":
            r["min_runtime"] = min_runtime(op) if op.kind == "builtin" else None
            if left is not None:
                r["xnnpack"] = r.get("xnnpack") or ("runs on the builtin kernels (measured)" if op.index in left else None)
            elif measured and measured.get("verdict") == "fails":
                r["xnnpack"] = "the delegate fails to prepare the model (measured)"
            else:
                r["xnnpack"] = r.get("xnnpack") or _xnnpack(facts, op, xt)
            r["gpu"] = r.get("gpu") or _gpu(facts, op, gt)
    return list(rows.values())


def check_ops(facts: ModelFacts, runtimes: list[str] | None = None, measured: dict | None = None) -> tuple[list[CheckResult], list[dict]]:
    """Op checks per runtime. ``measured``: LiteRT's own verdict (devicekit.runtime.probe) for a .tflite, which
    decides the XNNPACK result; without it the result is predicted from the rule table."""
    gates = dict(parse_runtime(r) for r in (runtimes or []))
    for g in gates:
        if g not in FORMATS[facts.format].check_runtimes:
            raise UsageError(f"runtime {g} does not apply to a .{facts.format} file",
                             hint=f"for .{facts.format}: {', '.join(FORMATS[facts.format].check_runtimes) or 'none (convert it first)'}")
    table = op_table(facts, measured)
    results: list[CheckResult] = []
    if facts.format == "tflite":
        results += _litert(facts, table, gates)
        if measured:
            results += _litert_measured(facts, measured, gates)
        else:
            results += _delegate(facts, "xnnpack", _xnnpack, gates)
        results += _delegate(facts, "gpu", _gpu, gates)
        nn = rules.load("nnapi")
        results.append(CheckResult("ops:nnapi", "warn", value="deprecated", limit=f"Android API < {nn['deprecated_from_api']}",
                                   message=nn["message"], hint="prefer the gpu or xnnpack runtime", gate="nnapi" in gates,
                                   details={"source": rules.source("nnapi")}))
    elif facts.format == "mlpackage":
        results += _coreml_ane(facts, gates)
    else:
        custom = sorted({op.custom_name for op in facts.ops if op.kind == "custom"})
        results.append(CheckResult("ops:onnx", "warn" if custom else "info", value=len(facts.ops),
                                   message=f"{len(facts.ops)} ops, opset {facts.metadata.get('opset')}"
                                   + (f"; custom-domain ops: {', '.join(custom)}" if custom else ""),
                                   hint="runtime and delegate checks apply to the converted .tflite/.mlpackage: devicekit convert MODEL --target tflite-int8"))
    return results, table


def _litert(facts: ModelFacts, table: list[dict], gates: dict) -> list[CheckResult]:
    out = []
    floor = gates.get("litert")
    gated = "litert" in gates
    versions = [r["min_runtime"] for r in table if r.get("min_runtime")]
    need = max(versions, key=_vkey) if versions else None
    unknown = [f"{r['op']} v{r['version']}" for r in table if r["kind"] == "builtin" and not r.get("min_runtime")]
    too_new = [f"{r['op']} v{r['version']} needs {r['min_runtime']}" for r in table
               if floor and r.get("min_runtime") and _vkey(r["min_runtime"]) > _vkey(floor)]
    status = "fail" if too_new else "pass"
    msg = f"builtins need LiteRT/TFLite >= {need or '?'}"
    if unknown:
        msg += f"; newer than the version table: {', '.join(unknown[:6])}"
    out.append(CheckResult("ops:litert", status, value=need, limit=floor, gate=gated,
                           message=msg + (f"; above {floor}: {', '.join(too_new)}" if too_new else ""),
                           hint="ask the converter for older op versions or raise the app's runtime" if too_new else None,
                           details={"unknown_versions": unknown, "source": rules.source("litert_builtin")}))
    custom = [r for r in table if r["kind"] == "custom"]
    if custom:
        names = ", ".join(f"{r['op']} x{r['count']}" for r in custom)
        out.append(CheckResult("ops:custom", "fail" if gated else "warn", value=[r["op"] for r in custom], gate=gated,
                               message=f"custom ops {names}: the model cannot run unless the app registers them",
                               hint="link the op implementations (e.g. MediaPipe's) into the app and add them to the op resolver"))
    flex = [r for r in table if r["kind"] == "flex"]
    if flex:
        fx = rules.load("flex")
        mb = fx["full_library_bytes_per_abi"] / 1e6
        sel = fx["selective_build_bytes_per_abi"] / 1e6
        out.append(CheckResult("ops:flex", "fail" if gated else "warn", value=[r["op"] for r in flex], gate=gated,
                               limit=fx["full_library_bytes_per_abi"],
                               message=f"Select TF (Flex) ops {', '.join(r['op'] for r in flex)}: needs the Flex delegate, "
                                       f"about +{mb:.0f} MB per ABI (+{sel:.0f} MB with a selective build)",
                               hint="rewrite the layers so they convert to builtins", details={"source": rules.source("flex")}))
    return out


def _delegate(facts: ModelFacts, name: str, rule_fn, gates: dict) -> list[CheckResult]:
    table = rules.load(name)
    macs = all_macs(facts)
    bad = Counter()
    bad_macs = 0
    for op, m in zip(facts.ops, macs):
        why = rule_fn(facts, op, table)
        if why:
            bad[why] += 1
            bad_macs += m
    total = sum(macs) or 1
    gated = name in gates
    n_bad = sum(bad.values())
    if not n_bad:
        return [CheckResult(f"ops:{name}", "pass", value=0, limit=0, gate=gated,
                            message=f"{name}: all {len(facts.ops)} ops are delegated", details={"source": rules.source(name)})]
    reasons = "; ".join(f"{k} x{v}" for k, v in bad.most_common(6))
    return [CheckResult(f"ops:{name}", "fail" if gated else "warn", value=n_bad, limit=0, gate=gated,
                        message=f"{name}: {n_bad} of {len(facts.ops)} ops fall back to the CPU ({1 - bad_macs / total:.0%} of MACs delegated): {reasons}",
                        hint="each fallback splits the graph and copies tensors between delegate and CPU",
                        details={"reasons": dict(bad), "delegated_macs_share": round(1 - bad_macs / total, 4),
                                 "constraints": table.get("constraints"), "source": rules.source(name)})]


def _litert_measured(facts: ModelFacts, measured: dict, gates: dict) -> list[CheckResult]:
    """The interpreter's and XNNPACK's verdict as LiteRT itself gave it (loaded in a child process)."""
    gated = "xnnpack" in gates
    verdict = measured.get("verdict")
    src = {"source": "measured: ai-edge-litert loaded the file in a child process (devicekit.runtime.probe)"}
    out = []
    b = measured.get("builtin", {})
    if verdict in ("crashed", "timeout"):
        return [CheckResult("runtime:litert", "fail", value=verdict, gate=True, message=measured.get("error", verdict),
                            hint="the file is damaged or uses something this LiteRT cannot run", details=src)]
    x = measured.get("xnnpack", {})
    custom = sorted({op.custom_name for op in facts.ops if op.kind == "custom"})
    runs = b.get("invoke") or x.get("invoke")
    if not runs and custom and "custom op" in str(b.get("error", "")):
        # not a broken file: the app must register the ops (ops:custom says so); it cannot be run here without them
        out.append(CheckResult("runtime:litert", "fail" if "litert" in gates else "warn", value="custom ops", gate="litert" in gates,
                               message=f"not run here: LiteRT needs the app's implementation of {', '.join(custom)} ({b.get('error')})",
                               hint="register the custom ops in the app's op resolver (see ops:custom)", details=src))
    elif not runs:
        what = "load" if not b.get("load") else ("allocate tensors" if not b.get("allocate") else "invoke")
        out.append(CheckResult("runtime:litert", "fail", value=what, gate=True,
                               message=f"will not run: LiteRT's builtin kernels cannot {what} it ({b.get('error', '?')})",
                               hint="reconvert the model; devicekit convert checks every artifact it writes", details=src))
    elif not b.get("invoke"):
        out.append(CheckResult("runtime:litert", "pass", value="xnnpack only", gate=False,
                               message=f"runs with XNNPACK (the default resolver) only: the builtin kernels alone cannot "
                                       f"({b.get('error', '?')})", details=src))
    macs = all_macs(facts)
    total = sum(macs) or 1
    if verdict == "unloadable":
        # nothing to measure: LiteRT cannot allocate it here at all; what the rule table predicts, marked as such
        for r in _delegate(facts, "xnnpack", _xnnpack, gates):
            r.message = f"{r.message} (predicted from the rule table: LiteRT cannot allocate the model here, see runtime:litert)"
            r.details = {**r.details, "verdict": "unloadable", "source": src["source"] + "; ops predicted from " + r.details.get("source", "the rule table")}
            out.append(r)
    elif verdict == "fails":
        out.append(CheckResult("ops:xnnpack", "fail", value="fails to prepare", gate=True,
                               message=f"xnnpack: the delegate fails to prepare ({x.get('error', '?')}): a phone's default "
                                       "LiteRT interpreter will not load this file",
                               hint="reconvert with devicekit convert (it rewrites what XNNPACK refuses), or keep those ops float",
                               details={"verdict": "fails", **src}))
    elif verdict == "partly":
        left = x.get("left", [])
        by_op = Counter(o["op"] for o in left)
        left_macs = sum(macs[o["index"]] for o in left if o["index"] < len(macs))
        reasons = "; ".join(f"{k} x{v}" for k, v in by_op.most_common(6))
        out.append(CheckResult("ops:xnnpack", "fail" if gated else "warn", value=len(left), limit=0, gate=gated,
                               message=f"xnnpack: {len(left)} of {len(facts.ops)} ops run on the builtin kernels between "
                                       f"{x.get('partitions')} delegate partition(s) ({1 - left_macs / total:.0%} of MACs delegated): {reasons}",
                               hint="each fallback splits the graph and copies tensors between delegate and CPU",
                               details={"verdict": "partly", "left": left, "delegated_macs_share": round(1 - left_macs / total, 4),
                                        "partitions": x.get("partitions"), **src}))
    elif verdict == "delegated":
        out.append(CheckResult("ops:xnnpack", "pass", value=0, limit=0, gate=gated,
                               message=f"xnnpack: all {len(facts.ops)} ops delegated ({x.get('partitions')} partition(s))",
                               details={"verdict": "delegated", **src}))
    return out


def _coreml_ane(facts: ModelFacts, gates: dict) -> list[CheckResult]:
    table = rules.load("coreml_ane")
    gated = "coreml-ane" in gates
    issues = Counter()
    only = table.get("only_when_output_dtype", {})
    for op in facts.ops:
        if op.op not in table["ops_off_ane"]:
            continue
        if op.op in only and not any(facts.tensor(o) is not None and facts.tensor(o).dtype in only[op.op]
                                     for o in op.outputs if o >= 0):
            continue  # e.g. fp32 <-> fp16 casts at the model's edges are fine
        issues[f"{op.op}: {table['ops_off_ane'][op.op]}"] += 1
    if facts.metadata.get("model_type") == "mlProgram":
        f32 = [t for t in facts.tensors if not t.const and t.dtype == "float32" and t.shape]
        if f32 and len(f32) > len(facts.inputs) + len(facts.outputs):
            issues[table["model_rules"]["compute_precision_float32"]] += 1
    if facts.metadata.get("flexible_input_shapes"):
        issues[table["model_rules"]["flexible_input_shapes"]] += 1
    for t in facts.tensors:
        if len(t.shape) > 5:
            issues[table["model_rules"]["rank_gt_5"]] += 1
        if any(d > table["max_dim"] for d in t.shape):
            issues[table["model_rules"]["large_dim"]] += 1
    if not issues:
        return [CheckResult("ops:coreml-ane", "pass", value=0, gate=gated, message="no op or pattern known to keep it off the Neural Engine",
                            details={"source": rules.source("coreml_ane")})]
    return [CheckResult("ops:coreml-ane", "fail" if gated else "warn", value=sum(issues.values()), limit=0, gate=gated,
                        message="off the Neural Engine: " + "; ".join(f"{k} (x{v})" for k, v in issues.items()),
                        hint="convert with compute_precision FLOAT16, enumerated shapes, and move the listed ops out of the model",
                        details={"issues": dict(issues), "source": rules.source("coreml_ane")})]
