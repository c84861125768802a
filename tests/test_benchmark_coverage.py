"""benchmarks/coverage.py's pure helpers: the "behind a peer" text comes from the numbers, failure reasons are one line."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from common import error_line  # noqa: E402
from coverage_render import behind, headline  # noqa: E402


def _file(size: int, ms: float, score: float, ops: dict, xnnpack: str = "delegated", left=()) -> dict:
    head = {"kind": "classifier", "top1": 1.0 - score / 50, "cosine_min": 0.999, "failures": [], "rel_l2": 0.01}
    return {
        "path": "x.tflite",
        "size_bytes": size,
        "ops": ops,
        "xnnpack": xnnpack,
        "xnnpack_left": list(left),
        "latency_1t": {"median": ms},
        "error": {"passed": score <= 1, "score": score, "heads": [head]},
        "int8_mac_share": 0.95,
        "int8_weight_share": 0.9,
    }


def _row(dk: dict, peers: dict) -> dict:
    info = {"int8": {"status": "verified", "float_regions": [{"region": "FC tail", "extra_bytes": 4096}]}}
    return {"model": "m", "tools": {"devicekit": {"int8": dk, "info": info}, **{t: {"int8": f} for t, f in peers.items()}}}


def test_behind_names_the_smaller_faster_peer_with_measured_reasons():
    dk = _file(1000 * 1024, 2.0, 0.5, {"CONV_2D": 10, "QUANTIZE": 4, "DEQUANTIZE": 3}, "partly", ["SOFTMAX"])
    peer = _file(800 * 1024, 1.0, 0.2, {"CONV_2D": 10, "QUANTIZE": 1, "DEQUANTIZE": 1})
    text = "\n".join(behind([_row(dk, {"peer": peer})]))
    assert "smaller: peer int8 800 KB vs devicekit 1,000 KB (0.80x" in text and "FC tail (4 KB)" in text
    assert "faster: peer int8 1.00 ms vs devicekit 2.00 ms (0.50x; XNNPACK: devicekit's file partly, the peer's delegated" in text
    assert "leaves SOFTMAX to the builtin kernels, the peer's does not" in text and "QUANTIZE (4 vs 1)" in text
    assert "more accurate: peer" in text


def test_behind_stays_quiet_within_the_margins():
    dk = _file(1000, 2.0, 0.5, {"CONV_2D": 10})
    peer = _file(990, 1.9, 0.45, {"CONV_2D": 10})  # 1 % smaller, 5 % faster, score 0.9x: all noise
    text = "\n".join(behind([_row(dk, {"peer": peer})]))
    assert "no peer is smaller, faster or more accurate" in text
    assert "no peer smaller on 1, no peer faster on 1, no peer more accurate on 1" in text


def test_headline_and_error_line():
    assert headline({"heads": [{"kind": "landmarks", "mean_px": 0.123}, {"kind": "tensor", "rel_l2": 0.05}]}) == "0.123 px; rel 5.0e-02"
    log = (
        'Traceback (most recent call last):\n  File "x.py", line 1\nfoo.QuantError: Unsupported op PADV2\n'
        "The above exception was the direct cause of the following exception:\nRuntimeError: fast path failed.\n"
    )
    assert error_line(log) == "foo.QuantError: Unsupported op PADV2 (then RuntimeError: fast path failed.)"
    assert error_line("\x1b[31mstep 1\x1b[0m\nconversion failed badly\nbye") == "conversion failed badly"


def test_a_win_by_a_file_that_fails_the_gate_says_so():
    dk = _file(1000, 2.0, 0.5, {"CONV_2D": 10})
    peer = _file(1000, 1.0, 5.0, {"CONV_2D": 10})
    peer["error"]["heads"][0]["failures"] = ["top1 0.9 (limit >= 0.98)"]
    text = "\n".join(behind([_row(dk, {"peer": peer})]))
    assert "faster: peer" in text and "but it fails the gate's limits: top1 0.9 (limit >= 0.98)" in text
    assert "more accurate: peer" not in text
