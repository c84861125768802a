"""int8 purity: which ops run in float, every QUANTIZE/DEQUANTIZE pair (a float island), the float share of MACs."""

from __future__ import annotations

from ..modelfile.facts import ModelFacts
from .graph import all_macs, family, runs_in_float
from .result import CheckResult


def int8_facts(facts: ModelFacts) -> dict:
    macs = all_macs(facts)
    total = sum(macs)
    float_ops = [op for op in facts.ops if runs_in_float(facts, op)]
    float_macs = sum(m for op, m in zip(facts.ops, macs) if runs_in_float(facts, op))
    quantized = any(t.quantized and not t.const for t in facts.tensors) or any(t.quantized and t.const and len(t.shape) >= 2 for t in facts.tensors)
    consumers = facts.consumers()
    pairs = []
    for op in facts.ops:
        if family(op) != "dequantize" or not op.inputs:
            continue
        src = facts.tensor(op.inputs[0])
        if src is None or src.const:
            continue  # fp16/int8 weight dequantize, not an activation round trip
        # walk forward over float tensors to the QUANTIZE ops that end the island
        island, ends, frontier, seen = [], [], list(op.outputs), set()
        while frontier and len(seen) < 10_000:
            t = frontier.pop()
            if t in seen:
                continue
            seen.add(t)
            for c in consumers.get(t, []):
                if family(c) == "quantize":
                    ends.append(c.index)
                elif runs_in_float(facts, c) and c.index not in island:
                    island.append(c.index)
                    frontier.extend(c.outputs)
        pairs.append(
            {
                "dequantize": op.index,
                "quantize": sorted(set(ends)),
                "float_ops": sorted(island)[:50],
                "float_op_types": sorted({facts.ops[i].op for i in island}),
            }
        )
    return {
        "quantized": quantized,
        "total_macs": total,
        "float_macs": float_macs,
        "float_macs_share": round(float_macs / total, 4) if total else 0.0,
        "float_ops": [{"op": o.index, "type": o.op} for o in float_ops][:200],
        "float_op_count": len(float_ops),
        "quantize_ops": [o.index for o in facts.ops if family(o) == "quantize"],
        "dequantize_ops": [o.index for o in facts.ops if family(o) == "dequantize"],
        "pairs": pairs,
    }


def check_int8(facts: ModelFacts, info: dict, require: bool) -> list[CheckResult]:
    if not info["quantized"] and not require:
        return [
            CheckResult(
                "int8",
                "info",
                value=info["float_macs_share"],
                message="float model (no int8 tensors)",
                hint="devicekit convert MODEL --target tflite-int8 for an int8 model",
            )
        ]
    n = info["float_op_count"]
    types = sorted({r["type"] for r in info["float_ops"]})
    pure = n == 0
    status = "pass" if pure else ("fail" if require else "warn")
    trips = sum(1 for p in info["pairs"] if p["quantize"])
    tails = len(info["pairs"]) - trips
    msg = (
        "all ops run in int8"
        if pure
        else f"{n} ops run in float ({', '.join(types[:8])}), {info['float_macs_share']:.1%} of MACs; "
        f"{trips} DEQUANTIZE->float->QUANTIZE round trip(s), {tails} float tail(s) to the outputs"
    )
    return [
        CheckResult(
            "int8",
            status,
            value=info["float_macs_share"],
            limit=0.0,
            gate=require,
            message=msg,
            hint=None if pure else "quantise the float ops too, or accept the float tail (it may be there on purpose, e.g. soft-argmax)",
            details={"float_op_count": n, "round_trips": trips, "float_tails": tails},
        )
    ]
