"""Size: file size, size inside an APK stored and deflated, budget shares, per-layer weights, what-ifs.

What-ifs are computed from the real weight tensors: fp16 halves float32
weights, int8 quarters them (plus one float scale and zero point per output
channel), and for FC-heavy models one more 2x2 pool (or stride 2) before
the first FC layer divides that layer's input features by 4.
"""

from __future__ import annotations

import zlib
from pathlib import Path

from ..modelfile.facts import ModelFacts
from . import rules
from .graph import const_source, family, human_bytes, spatial_chw, weight_tensor
from .result import CheckResult

ZIP_ENTRY_OVERHEAD = 30 + 46 + 64  # local header + central directory entry + a typical name


SAMPLE_ABOVE = 64 << 20
SAMPLE_CHUNKS, CHUNK = 32, 1 << 20


def _deflate(data: bytes | memoryview) -> int:
    """Deflated size (level 6, what aapt/zip use by default); above 64 MB estimated from 32 evenly spaced 1 MB chunks."""
    if len(data) <= SAMPLE_ABOVE:
        return len(zlib.compress(data, 6))
    step = (len(data) - CHUNK) // (SAMPLE_CHUNKS - 1)
    view = memoryview(data)
    packed = sum(len(zlib.compress(view[i * step : i * step + CHUNK], 6)) for i in range(SAMPLE_CHUNKS))
    return int(packed / (SAMPLE_CHUNKS * CHUNK) * len(data))


def deflated_bytes(facts: ModelFacts) -> int:
    """Size of the model when deflated as a zip entry would be."""
    if facts.blob is not None:
        return _deflate(facts.blob)
    total = 0
    for p in sorted(Path(facts.path).rglob("*")):
        if p.is_file():
            total += _deflate(p.read_bytes()) + ZIP_ENTRY_OVERHEAD
    return total


def layer_weights(facts: ModelFacts) -> list[dict]:
    """Which layers hold the bytes: const bytes attributed to the op that consumes them (shared weights once)."""
    producers = facts.producers()
    seen: set[int] = set()
    rows = []
    for op in facts.ops:
        total, dtypes = 0, set()
        for i in op.inputs:
            t = facts.tensor(i)
            if t is None:
                continue
            src = t if t.const else const_source(facts, t, producers)
            if src is None or src.index in seen or family(op) == "dequantize":
                continue
            seen.add(src.index)
            total += src.const_bytes
            dtypes.add(src.dtype)
        if total:
            out = facts.tensor(op.outputs[0]) if op.outputs else None
            rows.append({"op": op.index, "type": op.op, "name": out.name if out else "", "bytes": total, "dtypes": sorted(dtypes)})
    rows.sort(key=lambda r: -r["bytes"])
    return rows


def _float_weight_bytes(facts: ModelFacts) -> tuple[int, int]:
    f32 = sum(t.const_bytes for t in facts.tensors if t.const and t.dtype == "float32" and len(t.shape) >= 2)
    f16 = sum(t.const_bytes for t in facts.tensors if t.const and t.dtype == "float16" and len(t.shape) >= 2)
    return f32, f16


def first_fc(facts: ModelFacts) -> dict | None:
    """The first FC layer fed by a spatial feature map, with the map's (C, H, W) and its weight bytes."""
    producers = facts.producers()
    for op in facts.ops:
        if family(op) != "fc":
            continue
        w = weight_tensor(facts, op)
        src = None if w is None else (w if w.const else const_source(facts, w, producers))
        if src is None:
            continue
        t = facts.tensor(op.inputs[0])
        hops = 0
        while t is not None and len(t.shape) != 4 and hops < 6:
            p = producers.get(t.index)
            if p is None or family(p) not in ("reshape", "transpose", "quantize", "dequantize"):
                break
            t = facts.tensor(p.inputs[0])
            hops += 1
        while t is not None and hops < 8:  # past layout transposes to the map in the file's own layout
            p = producers.get(t.index)
            if p is None or family(p) not in ("transpose", "quantize", "dequantize"):
                break
            t = facts.tensor(p.inputs[0])
            hops += 1
        chw = spatial_chw(facts, t) if t is not None else None
        if chw is None:
            return None
        return {
            "op": op.index,
            "weight_bytes": src.const_bytes,
            "weight_dtype": src.dtype,
            "chw": chw,
            "features": chw[0] * chw[1] * chw[2],
            "bytes_per_weight": src.const_bytes / max(src.elements, 1),
        }
    return None


def pool_what_if(facts: ModelFacts, total_bytes: int, max_pools: int = 3) -> list[dict]:
    """Model bytes with k more 2x2 pools (or stride 2) before the first FC, for k = 1..max_pools."""
    fc = first_fc(facts)
    if fc is None:
        return []
    c, h, w = fc["chw"]
    out = []
    for k in range(1, max_pools + 1):
        hk, wk = h >> k, w >> k
        if hk < 1 or wk < 1:
            break
        new_w = fc["weight_bytes"] * (c * hk * wk) / fc["features"]
        new_total = total_bytes - fc["weight_bytes"] + new_w
        out.append(
            {
                "extra_pools": k,
                "feature_map": [c, hk, wk],
                "first_fc_weight_bytes": int(new_w),
                "model_bytes": int(new_total),
                "fp32_model_bytes": None,
            }
        )
    return out


def size_facts(facts: ModelFacts) -> dict:
    f32, f16 = _float_weight_bytes(facts)
    total = facts.file_bytes
    stored = total + ZIP_ENTRY_OVERHEAD
    deflated = deflated_bytes(facts) + ZIP_ENTRY_OVERHEAD
    int8_overhead = 0
    for t in facts.tensors:
        if t.const and t.dtype in ("float32", "float16") and len(t.shape) >= 2:
            int8_overhead += 12 * t.shape[0]  # a scale and a zero point per output channel
    what_if = {
        "fp16": int(total - f32 / 2) if f32 else None,
        "int8": int(total - f32 * 3 / 4 - f16 / 2 + int8_overhead) if (f32 or f16) else None,
    }
    fc = first_fc(facts)
    layers = layer_weights(facts)
    weight_total = sum(r["bytes"] for r in layers) or 1
    fc_heavy = fc is not None and fc["weight_bytes"] > 0.5 * weight_total
    pools = pool_what_if(facts, total) if fc_heavy else []
    for row in pools:  # the same extra pool combined with int8 weights
        row.pop("fp32_model_bytes")
        row["int8_model_bytes"] = None
        if what_if["int8"] and fc["weight_dtype"] in ("float32", "float16"):
            elems = fc["weight_bytes"] / fc["bytes_per_weight"]
            kept = row["first_fc_weight_bytes"] / fc["weight_bytes"]
            row["int8_model_bytes"] = int(what_if["int8"] - elems + elems * kept)
    return {
        "file_bytes": total,
        "apk_stored_bytes": stored,
        "apk_deflated_bytes": deflated,
        "weight_bytes": sum(t.const_bytes for t in facts.tensors),
        "float32_weight_bytes": f32,
        "float16_weight_bytes": f16,
        "what_if": what_if,
        "first_fc": fc,
        "fc_heavy": fc_heavy,
        "extra_pool_what_if": pools,
        "layers": layers[:10],
        "layers_total": len(layers),
    }


def _suggest(name: str, limit: int, size: dict, measure: str) -> str | None:
    key = "apk_stored_bytes" if measure == "stored" else "apk_deflated_bytes"
    ratio = size[key] / max(size["file_bytes"], 1)
    tries = []
    for label, b in (("fp16 weights", size["what_if"]["fp16"]), ("int8 weights", size["what_if"]["int8"])):
        if b:
            tries.append((label, b * ratio))
    for row in size["extra_pool_what_if"]:
        k = row["extra_pools"]
        what = f"{k} more 2x2 max-pool{'s' if k > 1 else ''} (or stride 2) before the first FC ({'x'.join(map(str, row['feature_map']))} map)"
        tries.append((what, row["model_bytes"] * ratio))
        if row.get("int8_model_bytes"):
            tries.append((what + " plus int8 weights", row["int8_model_bytes"] * ratio))
    fits = [f"{label}: {human_bytes(b)}" for label, b in tries if b <= limit]
    if not fits:
        return f"nothing devicekit can compute brings it under {human_bytes(limit)}; move the model to a Play asset pack or download it at first run"
    return "would fit with " + "; or ".join(fits[:3])


def check_size(facts: ModelFacts, budgets: dict[str, int], size: dict | None = None, gate: bool = True) -> list[CheckResult]:
    size = size or size_facts(facts)
    table = rules.load("budgets")["budgets"]
    results = []
    suffix = Path(facts.path).suffix.lower()
    compress_hint = None
    if facts.format == "tflite":
        compress_hint = (
            "keep the .tflite suffix so the Android build stores it uncompressed (AGP >= 4.1 adds "
            "tflite to noCompress; older builds need aaptOptions { noCompress 'tflite' })"
        )
    results.append(
        CheckResult(
            "size",
            "info",
            value=size["file_bytes"],
            limit=None,
            hint=compress_hint,
            message=(
                f"{human_bytes(size['file_bytes'])} on disk; in an APK {human_bytes(size['apk_stored_bytes'])} stored "
                f"(uncompressed, mmap-able), {human_bytes(size['apk_deflated_bytes'])} if deflated"
                + ("" if suffix == ".tflite" or facts.format != "tflite" else "; WARNING: not named .tflite, a project would compress it")
            ),
            details={k: size[k] for k in ("apk_stored_bytes", "apk_deflated_bytes", "weight_bytes")},
        )
    )
    for name, limit in budgets.items():
        # Download budgets count the compressed download; APK size counts the stored (uncompressed) model.
        measure = "deflated" if name in ("play-base", "appstore-cellular") else "stored"
        value = size["apk_deflated_bytes"] if measure == "deflated" else size["apk_stored_bytes"]
        if facts.format == "tflite" and measure == "deflated":
            measure, value = "stored", size["apk_stored_bytes"]  # .tflite stays uncompressed inside the package
        share = value / limit
        ok = value <= limit
        results.append(
            CheckResult(
                f"budget:{name}",
                "pass" if ok else "fail",
                value=value,
                limit=limit,
                gate=gate,
                hint=None if ok else _suggest(name, limit, size, measure),
                message=f"{human_bytes(value)} ({measure}) is {share:.0%} of {name} ({human_bytes(limit)})",
                details={"share": round(share, 4), "measure": measure, "what": table.get(name, {}).get("what", "custom budget")},
            )
        )
    return results
