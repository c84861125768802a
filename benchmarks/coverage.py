#!/usr/bin/env python3
"""Coverage: every corpus, zoo and MTCNN model through devicekit and four peers, judged the same way.

For each model and tool: does it convert (the one-line reason when not), fp32
and int8 error against PyTorch on held-out real images by devicekit's gate
measure, file sizes, LiteRT's XNNPACK verdict, and 1-thread host latency with
every file of the model interleaved in one loop. Writes
benchmarks/coverage.md and benchmarks/coverage.json.

    .venv/bin/python benchmarks/coverage.py [--models tv_squeezenet1_1,mtcnn-onet] [--tools devicekit,litert-torch]
                                            [--merge] [--runs 200] [--keep DIR] [--timeout S]
    .venv/bin/python benchmarks/coverage.py --render     # rewrite the .md from the .json only

Tools: devicekit, onnx2tf-1.29, onnx2tf-2.6.9 (make setup-onnx2tf2), litert-torch (make setup-litert-torch),
ai-edge-quantizer (make setup-aeq). ``--models`` takes names, ``default`` (every model but the optional
basiccnn-pool1) or ``all``. ``--merge`` keeps the rows of models not in this run. Each tool runs in a child
process with a memory cap and a time limit, so a crash or a hang is a row, not the end of the run.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, error_line, face_dir, interleaved_latency, run_capped, run_record  # noqa: E402
from coverage_tools import CALIB_COUNT, OPTIONAL, TOOLS, all_models, load  # noqa: E402

from devicekit.fsutil import atomic_write_text  # noqa: E402

TOOL_TIMEOUT_S = 3600


def calibration(model, work: Path):
    """The calibration set every tool gets (and the held-out images every file is judged on), made once per model."""
    import numpy as np

    from devicekit.converters.calibration import CalibrationSet, load_calibration

    cache = work / "calibration.npz"
    if cache.exists():
        z = np.load(cache, allow_pickle=False)
        meta = json.loads(str(z["meta"]))
        return CalibrationSet(z["pixels"], z["inputs"], meta["files"], meta["skipped"], holdout=z["holdout"],
                              holdout_files=meta["holdout_files"], validation=z["validation"],
                              validation_files=meta["validation_files"])
    cal = load_calibration(model.spec, face_dir(), CALIB_COUNT)
    meta = {"files": cal.files, "skipped": cal.skipped, "holdout_files": cal.holdout_files,
            "validation_files": cal.validation_files}
    np.savez(cache, pixels=cal.pixels, inputs=cal.inputs, holdout=cal.holdout, validation=cal.validation,
             meta=json.dumps(meta))
    return cal


def child_convert(name: str, tool: str, work: Path) -> None:
    """One tool on one model (a child process): writes work/TOOL.json."""
    done = json.loads((work / "done.json").read_text()) if (work / "done.json").exists() else {}
    model = load(name, work)
    calib = calibration(model, work)
    fn, _ = TOOLS[tool]
    try:
        res = fn(model, calib, work / tool, done)
    except Exception as exc:  # noqa: BLE001 - the tool failed as a whole: a row, with its reason
        text = str(exc).strip()
        reason = (text.splitlines()[0] if text else type(exc).__name__)[:300]
        res = {"fp32": {"failed": reason}, "int8": {"failed": reason}}
    atomic_write_text(work / f"{tool}.json", json.dumps(res, indent=1, default=str))


def measure_file(model, path: Path, prec: str, holdout) -> dict:
    """Size, op counts, LiteRT's XNNPACK verdict, integer share and the gate measure on the held-out images."""
    from devicekit.converters.judge import GateConfig, judge
    from devicekit.converters.tflite import _op_counts, integer_share
    from devicekit.errors import DevicekitError
    from devicekit.runtime import TFLiteRunner
    from devicekit.runtime.probe import probe

    e: dict = {"size_bytes": path.stat().st_size, "ops": _op_counts(path.read_bytes())}
    pr = probe(path)
    e["xnnpack"] = pr["verdict"]
    x = pr.get("xnnpack", {})
    if x.get("left"):
        e["xnnpack_left"] = sorted({o["op"] for o in x["left"]})
    if pr["verdict"] in ("fails", "unloadable", "crashed", "timeout"):
        e["xnnpack_error"] = (x.get("error") or pr.get("error") or pr.get("builtin", {}).get("error") or "")[:300]
    if prec == "int8":
        try:
            e.update(integer_share(path))
        except Exception as exc:  # noqa: BLE001 - devicekit's reader on a peer's file
            e["integer_share_error"] = str(exc)[:200]
    if pr["verdict"] in ("crashed", "timeout", "unloadable"):
        return e  # never opened in this process: it could take the whole measurement down
    try:
        runner = TFLiteRunner(path, fallback=True)
        e["judged_on"] = runner.delegate
        e["error"] = judge(model, runner, holdout, GateConfig().limits(prec)).to_json()
    except (DevicekitError, ValueError, RuntimeError) as exc:
        e["judge_error"] = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    return e


def child_measure(name: str, work: Path, runs: int) -> None:
    """Judge and time every file the tools wrote for one model (a child process): writes work/measure.json."""
    from devicekit.converters.judge import InputSet

    done = json.loads((work / "done.json").read_text())
    model = load(name, work)
    calib = calibration(model, work)
    holdout = InputSet("holdout", calib.holdout, f"{len(calib.holdout)} held-out real images")
    out: dict = {"calibration": {**calib.to_json(), "count": len(calib.inputs)}, "files": {}}
    paths = []
    for tool, res in done.items():
        for prec in ("fp32", "int8"):
            p = res.get(prec, {}).get("path")
            if p:
                print(f"   judge {tool} {prec}", file=sys.stderr, flush=True)
                out["files"][p] = measure_file(model, Path(p), prec, holdout)
                if out["files"][p]["xnnpack"] not in ("crashed", "timeout", "unloadable"):
                    paths.append(Path(p))
    print(f"   latency: {len(paths)} files interleaved, {runs} runs", file=sys.stderr, flush=True)
    for p, lat in interleaved_latency(paths, threads=1, runs=runs).items():
        out["files"][p]["latency_1t"] = lat
    atomic_write_text(work / "measure.json", json.dumps(out, indent=1, default=str))


def _child(args: list[str], work: Path, log: str, timeout: float) -> tuple[object, float, float]:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    t0 = time.perf_counter()
    r, peak = run_capped([sys.executable, str(Path(__file__).resolve()), *args], ROOT, env, timeout)
    (work / log).write_text(r.stdout if r is not None else f"stopped at {peak / 2**30:.1f} GiB resident")
    return r, peak, time.perf_counter() - t0


def run_model(name: str, tools: list[str], work: Path, runs: int, timeout: float) -> dict:
    """Every tool on one model in its own child process, then one measuring child; the model's row."""
    work.mkdir(parents=True, exist_ok=True)
    done: dict = {}
    for tool in tools:
        (work / f"{tool}.json").unlink(missing_ok=True)
        r, peak, secs = _child(["--child-convert", name, "--tool", tool, "--work", str(work)], work, f"{tool}.log", timeout)
        if r is None:
            why = {"failed": f"stopped at {peak / 2**30:.1f} GiB resident (the run's memory cap)"}
            res = {"fp32": why, "int8": why}
        elif (work / f"{tool}.json").exists():
            res = json.loads((work / f"{tool}.json").read_text())
        else:
            why = {"failed": f"the process died (exit code {r.returncode}): {error_line(r.stdout)}"}
            res = {"fp32": why, "int8": why}
        res.update(wall_seconds=round(secs, 1), peak_rss_gib=round(peak / 2**30, 2))
        done[tool] = res
        atomic_write_text(work / "done.json", json.dumps(done, indent=1))
        states = ", ".join(f"{p} {'ok' if 'path' in res.get(p, {}) else 'n/a' if 'not a converter' in str(res.get(p)) else 'FAILED'}"
                           for p in ("fp32", "int8"))
        print(f"  {tool}: {states} ({secs:.0f} s, peak {peak / 2**30:.1f} GiB)", file=sys.stderr, flush=True)
    r, peak, secs = _child(["--child-measure", name, "--work", str(work), "--runs", str(runs)], work, "measure.log", timeout)
    measured = json.loads((work / "measure.json").read_text()) if (work / "measure.json").exists() else {}
    if not measured:
        reason = f"stopped at {peak / 2**30:.1f} GiB" if r is None else error_line(r.stdout)
        measured = {"error": f"measuring failed: {reason}", "files": {}}
    print(f"  measured ({secs:.0f} s)", file=sys.stderr, flush=True)
    row = {"model": name, "group": all_models()[name], "calibration": measured.get("calibration"),
           "measure_seconds": round(secs, 1), "tools": {}}
    if "error" in measured:
        row["error"] = measured["error"]
    for tool, res in done.items():
        for prec in ("fp32", "int8"):
            p = res.get(prec, {}).get("path")
            if p:
                res[prec].update(measured["files"].get(p, {}))
                res[prec]["path"] = Path(p).name
        row["tools"][tool] = res
    return row


def pick_models(spec: str) -> list[str]:
    models = all_models()
    if spec in ("default", "all"):
        return [m for m in models if spec == "all" or m not in OPTIONAL]
    names = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [n for n in names if n not in models]
    if unknown or not names:
        raise ValueError(f"unknown model(s) {', '.join(unknown) or '(none given)'} (known: {', '.join(models)}, default, all)")
    return names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="default", help="comma-separated names, 'default' or 'all'")
    ap.add_argument("--tools", default=",".join(TOOLS), help=f"comma-separated, from {', '.join(TOOLS)}")
    ap.add_argument("--runs", type=int, default=200, help="timed invokes per file (median reported)")
    ap.add_argument("--merge", action="store_true", help="keep the other models' rows of the existing JSON")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "coverage.md"))
    ap.add_argument("--keep", help="keep every converted file and log in this folder (default: a temporary one)")
    ap.add_argument("--timeout", type=float, default=TOOL_TIMEOUT_S, help="seconds per tool per model")
    ap.add_argument("--render", action="store_true", help="only rewrite the .md from the existing .json")
    ap.add_argument("--child-convert", help=argparse.SUPPRESS)
    ap.add_argument("--child-measure", help=argparse.SUPPRESS)
    ap.add_argument("--tool", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_convert:
        return child_convert(args.child_convert, args.tool, Path(args.work))
    if args.child_measure:
        return child_measure(args.child_measure, Path(args.work), args.runs)
    from coverage_render import render

    out_json = Path(args.out).with_suffix(".json")
    if args.render:
        if not out_json.exists():
            ap.error(f"{out_json} not found: nothing to render")
        atomic_write_text(Path(args.out), render(json.loads(out_json.read_text()), list(TOOLS)))
        return print(args.out)
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    bad = [t for t in tools if t not in TOOLS]
    if bad or not tools or args.runs < 1:
        ap.error(f"unknown tool(s) {', '.join(bad) or '(none given)'} (known: {', '.join(TOOLS)})" if bad or not tools
                 else "--runs must be >= 1")
    tools = [t for t in TOOLS if t in tools]  # the registry's order: ai-edge-quantizer after devicekit
    try:
        names = pick_models(args.models)
    except ValueError as exc:
        ap.error(str(exc))
    old = [r for r in json.loads(out_json.read_text()) if r["model"] not in names] if args.merge and out_json.exists() else []
    cmd = shlex.join(["python", "benchmarks/coverage.py", *sys.argv[1:]])
    t0 = time.perf_counter()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="dk-coverage-") as tmp:
        base = Path(args.keep) if args.keep else Path(tmp)
        for name in names:
            print(f"== {name}", file=sys.stderr, flush=True)
            row = run_model(name, tools, base / name, args.runs, args.timeout)
            rows.append(row)
            for r in rows:
                r["run"] = run_record(cmd, time.perf_counter() - t0)
            order = {m: i for i, m in enumerate(all_models())}
            every = sorted(old + rows, key=lambda r: order.get(r["model"], 999))
            atomic_write_text(out_json, json.dumps(every, indent=1, default=str))
            atomic_write_text(Path(args.out), render(every, list(TOOLS)))
    print(args.out)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted: the rows written so far are kept", file=sys.stderr)
        sys.exit(130)
