"""Peak activation memory: an arena plan over tensor lifetimes in execution order.

The plan follows LiteRT's ArenaPlanner + SimpleMemoryArena: graph inputs and
outputs live for the whole run; every other activation lives from the op
that writes it to the last op that reads it; tensors are placed largest
first at the lowest offset whose time-overlapping neighbours leave room
(64-byte alignment). In-place ops (rules/arena.json) reuse their input's
buffer when that input dies there. Op scratch (im2col) is modelled per the
same table. Weights (const tensors) are not in the arena.
"""

from __future__ import annotations

from ..modelfile.facts import ModelFacts
from . import rules
from .graph import family, human_bytes, spatial_chw
from .result import CheckResult

ALIGN = 64


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def lifetimes(facts: ModelFacts, sizes: dict[int, int] | None = None) -> dict[int, list[int]]:
    """tensor -> [first op, last op, bytes] for every arena tensor (buffers shared by in-place ops merged)."""
    arena = rules.load("arena")
    inplace = arena["inplace_ops"].get(facts.format, {})
    n = len(facts.ops)
    keep = set(facts.inputs) | set(facts.outputs)
    size = lambda t: (sizes or {}).get(t.index, t.nbytes)  # noqa: E731
    persistent = persistent_tensors(facts)
    live: dict[int, list[int]] = {}
    alias: dict[int, int] = {}
    last_use: dict[int, int] = {}
    for op in facts.ops:
        for i in op.inputs:
            if i >= 0:
                last_use[i] = op.index
    for i in facts.inputs:
        t = facts.tensor(i)
        if t is not None and not t.const:
            live[i] = [0, n, size(t)]
    for op in facts.ops:
        taken: set[int] = set()  # buffers already handed to an output of this op
        ins = [alias.get(i, i) for i in op.inputs if i >= 0]
        for i in ins:
            if i in live:
                live[i][1] = max(live[i][1], op.index)
        for o in op.outputs:
            t = facts.tensor(o)
            if o < 0 or t is None or t.const or t.variable or o in persistent:
                continue
            shared = None
            for k in inplace.get(op.op, ()):
                if k >= len(op.inputs) or op.inputs[k] < 0:
                    continue
                src = alias.get(op.inputs[k], op.inputs[k])
                if (
                    src in live
                    and src not in keep
                    and o not in keep
                    and src not in taken
                    and last_use.get(op.inputs[k]) == op.index
                    and last_use.get(src, -1) <= op.index
                    and live[src][2] >= size(t)
                ):
                    shared = src
                    break
            if shared is not None:
                alias[o] = shared  # the output reuses the dying input's buffer
                taken.add(shared)
                continue
            live[o] = [op.index, n if o in keep else op.index, size(t)]
        for o in op.outputs:
            root = alias.get(o, o)
            if root in live and root not in keep:
                live[root][1] = max(live[root][1], op.index)
    # extend to the last reader of each (aliased) buffer
    for op in facts.ops:
        for i in op.inputs:
            r = alias.get(i, i)
            if r in live and r not in keep:
                live[r][1] = max(live[r][1], op.index)
    for s in scratch(facts, arena):
        live[-1 - s["op"]] = [s["op"], s["op"], s["bytes"]]
    return live


def persistent_tensors(facts: ModelFacts) -> set[int]:
    """Outputs of DEQUANTIZE on a const input (fp16/int8 weights): computed once at prepare and kept in the
    persistent arena, not in the activation arena."""
    out = set()
    for op in facts.ops:
        if family(op) == "dequantize" and op.inputs and facts.tensor(op.inputs[0]) is not None and facts.tensor(op.inputs[0]).const:
            out.update(o for o in op.outputs if o >= 0)
    return out


def scratch(facts: ModelFacts, arena: dict) -> list[dict]:
    """Per-op scratch buffers the kernels allocate in the arena (im2col for non-1x1 convs)."""
    rules_ = arena.get("scratch", {}).get(facts.format, {})
    out = []
    for op in facts.ops:
        r = rules_.get(op.op)
        if not r or len(op.inputs) < 2 or not op.outputs:
            continue
        x, w, y = facts.tensor(op.inputs[0]), facts.tensor(op.inputs[1]), facts.tensor(op.outputs[0])
        if x is None or w is None or y is None or len(w.shape) != 4 or len(y.shape) != 4:
            continue
        if r.get("dtypes") and x.dtype not in r["dtypes"]:
            continue
        cout, kh, kw, cin = w.shape
        strided = x.shape[1:3] != y.shape[1:3]
        if kh * kw == 1 and not strided:
            continue
        out.append({"op": op.index, "bytes": y.shape[1] * y.shape[2] * kh * kw * cin * max(1, x.nbytes // max(x.elements, 1))})
    return out


def plan(live: dict[int, list[int]]) -> tuple[int, dict[int, int]]:
    """Place buffers like SimpleMemoryArena: largest first, lowest fitting offset among time-overlapping ones."""
    n_end = max((v[1] for v in live.values()), default=0)
    order = sorted(live.items(), key=lambda kv: (not (kv[1][0] == 0 and kv[1][1] >= n_end), -kv[1][2], kv[1][0]))
    placed: list[tuple[int, int, int, int]] = []  # offset, size, first, last (sorted by offset)
    offsets: dict[int, int] = {}
    high = 0
    for t, (first, last, size) in order:
        size = _align(max(size, 1))
        cur, best, best_gap = 0, None, None
        for off, sz, f, l in placed:
            if l < first or f > last:
                continue
            gap = off - cur
            if gap >= size and (best_gap is None or gap < best_gap):
                best, best_gap = cur, gap
            cur = max(cur, off + sz)
        off = cur if best is None else best
        offsets[t] = off
        placed.append((off, size, first, last))
        placed.sort()
        high = max(high, off + size)
    return high, offsets


def memory_facts(facts: ModelFacts) -> dict:
    live = lifetimes(facts)
    peak, _ = plan(live)
    naive = sum(_align(v[2]) for v in live.values())
    # live bytes per op: where the peak is
    per_op = [0] * max(len(facts.ops), 1)
    for first, last, size in live.values():
        for k in range(max(first, 0), min(last, len(facts.ops) - 1) + 1):
            per_op[k] += size
    worst = max(range(len(per_op)), key=per_op.__getitem__) if facts.ops else 0
    largest = sorted(((v[2], t) for t, v in live.items() if t >= 0), reverse=True)[:5]
    persistent = sum(facts.tensors[i].nbytes for i in persistent_tensors(facts))
    return {
        "peak_bytes": peak,
        "persistent_bytes": persistent,
        "total_bytes": peak + persistent,
        "sum_of_tensors_bytes": naive,
        "worst_op": worst,
        "worst_op_type": facts.ops[worst].op if facts.ops else None,
        "live_at_worst_bytes": per_op[worst],
        "largest": [
            {"tensor": t, "name": facts.tensors[t].name, "shape": list(facts.tensors[t].shape), "dtype": facts.tensors[t].dtype, "bytes": b}
            for b, t in largest
        ],
        "scratch_bytes": sum(v[2] for t, v in live.items() if t < 0),
        "extra_pool_at_worst": extra_pool(facts, worst),
        "arena_source": rules.source("arena"),
    }


def extra_pool(facts: ModelFacts, worst: int) -> dict | None:
    """Peak if the largest map written at or before the worst op were halved in H and W (one more 2x2 pool/stride),
    with every spatial map after it shrinking by the same factor."""
    cands = [
        (facts.tensor(o).nbytes, o, op.index)
        for op in facts.ops[: worst + 1]
        for o in op.outputs
        if o >= 0 and facts.tensor(o) is not None and spatial_chw(facts, facts.tensor(o)) and min(spatial_chw(facts, facts.tensor(o))[1:]) >= 2
    ]
    if not cands:
        return None
    _, t0, at = max(cands)
    sizes = {}
    for op in facts.ops[at:]:
        for o in op.outputs:
            t = facts.tensor(o)
            if o >= 0 and t is not None and spatial_chw(facts, t):
                c, h, w = spatial_chw(facts, t)
                sizes[o] = t.nbytes * ((h // 2) * (w // 2)) // max(h * w, 1)
    new_peak, _ = plan(lifetimes(facts, sizes))
    return {"after_op": at, "after_op_type": facts.ops[at].op, "tensor": facts.tensors[t0].name, "peak_bytes": new_peak}


def check_memory(facts: ModelFacts, info: dict, limit: int | None = None) -> list[CheckResult]:
    big = info["largest"][0] if info["largest"] else None
    msg = f"peak activations {human_bytes(info['peak_bytes'])} (arena plan; sum of all tensors {human_bytes(info['sum_of_tensors_bytes'])})"
    if info["persistent_bytes"]:
        msg += f" + {human_bytes(info['persistent_bytes'])} of weights dequantized at load"
    if big:
        msg += f"; largest {big['name']} {big['shape']} {human_bytes(big['bytes'])}"
    hint = None
    ep = info.get("extra_pool_at_worst")
    if ep:
        hint = (
            f"one more 2x2 max-pool or stride 2 after op {ep['after_op']} ({ep['after_op_type']}) "
            f"would bring the peak to about {human_bytes(ep['peak_bytes'])}"
        )
    status = "info" if limit is None else ("pass" if info["peak_bytes"] <= limit else "fail")
    return [
        CheckResult(
            "memory",
            status,
            value=info["peak_bytes"],
            limit=limit,
            message=msg,
            hint=hint,
            gate=limit is not None,
            details={"worst_op": info["worst_op"], "worst_op_type": info["worst_op_type"]},
        )
    ]
