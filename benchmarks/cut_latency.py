"""Where a .tflite spends its time: the 1-thread latency of the graph cut after op k, for several k.

    python benchmarks/cut_latency.py FILE.tflite --after 0,1,2,3 [--after ...] [--runs 200]

Each cut keeps ops 0..k and makes op k's first output the graph's output
(TFLite still runs every kept op). The difference between two cuts is what
the ops between them cost, as far as XNNPACK partitions the cut graph the
way it partitions the whole one; every graph is invoked in turn in one loop
(common.interleaved_latency), so their ratios are side by side. Prints a Markdown
table (redirect it into a .md with the command and machine on top).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved_latency, machine  # noqa: E402


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--after", action="append", required=True,
                    help="comma-separated op indices, one list per file (in the order of the files)")
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args()
    if len(args.after) != len(args.files):
        ap.error("give one --after list per file")
    with tempfile.TemporaryDirectory() as tmp:
        cases = []  # (file, label, the graph's path)
        for j, (f, after) in enumerate(zip(args.files, args.after)):
            data = f.read_bytes()
            names = op_names(data)
            cases.append((f, "whole graph", f))
            for k in (int(v) for v in after.split(",")):
                cut_path = Path(tmp) / f"{j}-{k}.tflite"
                cut_path.write_bytes(cut(data, k))
                cases.append((f, f"ops 0..{k} (#{k} {names[k]})", cut_path))
        timed = interleaved_latency([c[2] for c in cases], threads=1, runs=args.runs)
    print(f"`python benchmarks/cut_latency.py {' '.join(sys.argv[1:])}` on {machine()}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; 1 thread, median of {args.runs} invokes, "
          f"every graph invoked in turn in one loop\n")
    print("| file | graph | ms | delegate |\n| --- | --- | ---: | --- |")
    for f, label, path in cases:
        t = timed[str(path)]
        print(f"| {f.name} | {label} | {t['median']:.3f} | {t.get('delegate', t.get('error', ''))} |")


if __name__ == "__main__":
    main()
