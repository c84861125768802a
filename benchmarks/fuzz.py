#!/usr/bin/env python3
"""The full tier of the fuzz harness (tests/fuzz/): >= 1000 seeded mutants through check, verify and bench.

    python benchmarks/fuzz.py                          # this checkout: writes benchmarks/fuzz.json and fuzz.md
    python benchmarks/fuzz.py --against-ref main       # the same mutants through main's devicekit too (before/after)
    python benchmarks/fuzz.py --per-seed 10 --out /tmp/f  # a small run

Every mutant is judged by the runtime in a child process (LiteRT for .tflite, the onnx checker and onnxruntime
for .onnx, coremltools' program loader for .mlpackage) and each command's outcome is classified against that
verdict (tests/fuzz/run.py: crash, hang, traceback, silent accept, false refusal, wrong exit code). The commands
run in forked children of a warm process (``--mode worker``, the default) and, for every ``--sample``-th mutant,
once more as fresh ``python -m devicekit`` processes, which is what a user runs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from common import machine  # noqa: E402
from fuzz.run import PROBLEMS, as_json, fuzz, make_plan, problems, summarize  # noqa: E402

# mutants per seed at --per-seed 1.0 (scaled): 1050 in all
FULL = {"face_detection_short_range": 150, "face_landmark": 150, "iris_landmark": 120, "selfie_segmentation": 150,
        "landmark": 200, "conv_relu_gap": 80, "conv_pool_gemm": 80, "conv": 120}
SEED = 2026


def _checkout(ref: str, dst: Path) -> tuple[Path, str]:
    """``ref``'s tree, exported (git archive) into ``dst``: its devicekit runs the same mutants."""
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", ref], capture_output=True, text=True,
                         check=True).stdout.strip()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True).stdout
    dst.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(dst)], input=archive, check=True)
    for pkg in ("converters", "mobile_templates"):  # installed as devicekit.<pkg>: without these links the editable
        (dst / "devicekit" / pkg).symlink_to(f"../{pkg}")  # install's finder would serve this checkout's copies
    return dst, sha


def _run(label: str, plan, faces: Path, work: Path, mode: str, root: Path | None) -> dict:
    t0 = time.monotonic()

    def log(k, rec):
        bad = [f"{c}: {o['verdict']} (exit {o['rc']}) {o['message'][:120]}" for c, o in rec.outcomes.items()
               if o["verdict"] in PROBLEMS]
        if bad or k % 100 == 0:
            print(f"[{label}] {k + 1}/{len(plan)} {rec.mutant} ({rec.how}; {rec.oracle.get('verdict')})"
                  + (": " + "; ".join(bad) if bad else ""), file=sys.stderr, flush=True)

    records = fuzz(plan, work, faces, mode=mode, log=log, devicekit_root=root)
    return {"label": label, "mode": mode, "seconds": round(time.monotonic() - t0, 1), "summary": summarize(records),
            "problems": problems(records), "records": as_json(records)}


def counts_table(res: dict) -> list[str]:
    rows = ["| format | mutants | runtime: runs / refused / no-allocate / no-invoke / crashed / timeout | command | "
            "exit 0 / 1 / 2 / 3 | " + " | ".join(PROBLEMS) + " |",
            "|---|---|---|---|---|" + "---|" * len(PROBLEMS)]
    for fmt, d in res["summary"]["formats"].items():
        o = d["oracle"]
        verdicts = " / ".join(str(o.get(k, 0)) for k in ("runs", "refused", "no-allocate", "no-invoke", "crashed", "timeout"))
        for c in ("check", "verify", "bench"):
            if c not in d["commands"]:
                continue
            v = d["commands"][c]
            codes = " / ".join(str(v["exit_codes"].get(k, 0)) for k in ("0", "1", "2", "3"))
            rows.append(f"| {fmt} | {d['mutants']} | {verdicts} | {c} | {codes} | "
                        + " | ".join(str(v["verdicts"].get(p, 0)) for p in PROBLEMS) + " |")
    return rows


def totals(res: dict) -> dict:
    out = {p: 0 for p in PROBLEMS}
    for d in res["summary"]["formats"].values():
        for v in d["commands"].values():
            for p in PROBLEMS:
                out[p] += v["verdicts"].get(p, 0)
    return out


def write_md(path: Path, results: list[dict], argv: list[str]) -> None:
    lines = ["# Fuzzing check, verify and bench against the runtimes' own verdicts", "",
             f"Made by `python benchmarks/fuzz.py {' '.join(argv)}` on {machine()}, "
             f"{time.strftime('%Y-%m-%d', time.gmtime())}. Harness: tests/fuzz/ (mutators, oracle, runner); "
             "the quick tier of the default suite is tests/fuzz/test_fuzz_quick.py.", "",
             "Seed files: MediaPipe's face detector, face landmarker, iris landmarker and selfie segmenter (.tflite, "
             "from the mediapipe wheel), a small landmark .tflite made by TensorFlow's converter with a TorchScript "
             "reference (so verify runs a sound mutant to the end), two small .onnx graphs and a conv .mlpackage "
             "(coremltools' MIL builder). Mutations: bit and byte flips, truncations, chunk overwrites, and "
             "structure-aware edits of indices, vector lengths, shapes, enums and versions (.tflite), graph edits "
             "(.onnx), Manifest / spec / weight.bin damage (.mlpackage).", "",
             "Oracle, per mutant, in a child process: LiteRT exactly as devicekit's probe asks it (load, allocate, "
             "invoke on zeros; builtin kernels and XNNPACK), plus an independent structural walk with the schema's "
             "generated object API (`runs` files that read past their end are not counted as false refusals); the "
             "onnx checker and onnxruntime; coremltools' program loader. Problem classes: crash (a signal), hang "
             "(timeout), traceback, silent accept (exit 0 on a file the runtime refuses, crashes on, or cannot "
             "allocate / run), false refusal (exit 2 from check or bench on a sound file the runtime runs), "
             "wrong-code (exit 3, the device code, for a bad file).", ""]
    for res in results:
        t = totals(res)
        n = res["summary"]["mutants"]
        lines += [f"## {res['label']}", "",
                  f"{n} mutants, {res['mode']} mode, {res['seconds']:.0f} s. Totals over check, verify and bench: "
                  + ", ".join(f"{t[p]} {p}" for p in PROBLEMS) + ".", "", *counts_table(res), ""]
        if res["problems"]:
            lines += ["Problems (first 25):", ""]
            lines += [f"- {p['command']} on {p['mutant']} ({p['how']}; runtime: {p['oracle']}): {p['verdict']}, "
                      f"exit {p['rc']}: {p['message'][:160]}" for p in res["problems"][:25]]
            lines.append("")
    lines += ["The .onnx and .mlpackage verdicts come from the same tools devicekit itself asks (in a child "
              "process), so for those formats these counts measure devicekit's wiring, crash-freedom and exit "
              "codes, not a second opinion. LiteRT's verdict on a file that reads outside itself can vary between "
              "processes (an out-of-bounds read may or may not fault); devicekit refuses such files up front.", ""]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-seed", type=float, default=1.0, help="scale of the mutant counts (1.0: 1050 mutants)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--mode", choices=("worker", "subprocess"), default="worker")
    ap.add_argument("--sample", type=int, default=20, help="also run every N-th mutant as fresh processes (0: never)")
    ap.add_argument("--against-ref", default=None, help="a git ref (main) whose devicekit runs the same mutants")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks")
    a = ap.parse_args(argv)
    from fuzz.seeds import describe, faces_dir

    counts = {k: max(1, round(v * a.per_seed)) for k, v in FULL.items()}
    plan = make_plan(counts, a.seed)
    work = Path(tempfile.mkdtemp(prefix="devicekit-fuzz-"))
    faces = faces_dir(work / "faces")
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    results = [_run(f"this branch ({head})", plan, faces, work / "w", a.mode, None)]
    if a.sample:
        results.append(_run(f"this branch ({head}), every {a.sample}th mutant as fresh processes", plan[::a.sample],
                            faces, work / "s", "subprocess", None))
    if a.against_ref:
        root, sha = _checkout(a.against_ref, work / "ref")
        results.append(_run(f"{a.against_ref} ({sha}): the same mutants", plan, faces, work / "r", a.mode, root))
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "fuzz.json").write_text(json.dumps({"argv": sys.argv[1:], "seeds": describe(), "counts": counts,
                                                 "seed": a.seed, "results": [{k: v for k, v in r.items() if k != "records"}
                                                                             for r in results]}, indent=1) + "\n")
    write_md(a.out / "fuzz.md", results, sys.argv[1:])
    print(a.out / "fuzz.md")
    return 1 if results[0]["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
