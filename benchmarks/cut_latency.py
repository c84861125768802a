"""Where a .tflite spends its time: the 1-thread latency of the graph cut after op k, for several k.

    python benchmarks/cut_latency.py FILE.tflite --after 0,1,2,3 [--after ...] [--runs 200]

Each cut keeps ops 0..k and makes op k's first output the graph's output
(TFLite still runs every kept op). The difference between two cuts is what
the ops between them cost, as far as XNNPACK partitions the cut graph the
way it partitions the whole one; fp32 and int8 files of one model are timed
in turn in one loop, so their ratios are side by side. Prints a Markdown
table (redirect it into a .md with the command and machine on top).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402


def cut(data: bytes, k: int) -> bytes:
    import flatbuffers
    from ai_edge_litert import schema_py_generated as fb

    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(data, 0))
    sg = model.subgraphs[0]
    sg.operators = sg.operators[:k + 1]
    sg.outputs = [int(sg.operators[-1].outputs[0])]
    model.signatureDefs = []
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def op_names(data: bytes) -> list[str]:
    from ai_edge_litert.interpreter import Interpreter

    return [d["op_name"] for d in Interpreter(model_content=data)._get_ops_details()]


def interpreter(data: bytes):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=data, num_threads=1)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    x = np.random.default_rng(0).uniform(-1, 1, d["shape"]).astype(np.float32)
    if d["dtype"] != np.float32:
        scale, zero = d["quantization"]
        x = np.clip(np.round(x / scale + zero), -128, 127).astype(d["dtype"])
    it.set_tensor(d["index"], x)
    for _ in range(10):
        it.invoke()
    return it


def median_ms(it, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        it.invoke()
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--after", action="append", required=True,
                    help="comma-separated op indices, one list per file (in the order of the files)")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the median of the rounds is shown")
    args = ap.parse_args()
    if len(args.after) != len(args.files):
        ap.error("give one --after list per file")
    cases = []  # (file, label, interpreter)
    for f, after in zip(args.files, args.after):
        data = f.read_bytes()
        names = op_names(data)
        cases.append((f, "whole graph", interpreter(data)))
        for k in (int(v) for v in after.split(",")):
            cases.append((f, f"ops 0..{k} (#{k} {names[k]})", interpreter(cut(data, k))))
    rounds = [[median_ms(it, args.runs) for _, _, it in cases] for _ in range(args.rounds)]
    ms = np.median(np.array(rounds), axis=0)
    print(f"`python benchmarks/cut_latency.py {' '.join(sys.argv[1:])}` on {machine()}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; 1 thread, median of {args.runs} invokes, "
          f"median of {args.rounds} interleaved rounds\n")
    print("| file | graph | ms |\n| --- | --- | ---: |")
    for (f, label, _), t in zip(cases, ms):
        print(f"| {f.name} | {label} | {t:.3f} |")


if __name__ == "__main__":
    main()
