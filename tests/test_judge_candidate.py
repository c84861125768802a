"""benchmarks/judge_candidate.py: the selection rule's verdict from measured numbers, and its bad-input errors."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from judge_candidate import verdict  # noqa: E402

RULE = argparse.Namespace(max_heldout=0.96, max_profile=2.71, max_jitter=0.417)


def _res(val=0.0086, profile=0.0261, jitter=0.401, size=290_216, floats=(), status="verified"):
    return {
        "held_out": {"val_nme_vs_ensemble": val, "profile_nme_vs_teachers": profile},
        "jitter": {"filtered_step_px": jitter},
        "int8": {"int8_bytes": size, "learned_convs_float": list(floats), "status": status},
    }


def test_an_eligible_candidate_fails_nothing():
    assert verdict(_res(), RULE) == []


def test_each_criterion_fails_by_itself_with_its_numbers():
    assert verdict(_res(val=0.0100), RULE) == ["held-out video 1.00% > 0.96%"]
    assert verdict(_res(profile=0.0272), RULE) == ["profile set 2.72% > 2.71%"]
    assert verdict(_res(jitter=0.424), RULE) == ["jitter 0.424 px > 0.417 px"]
    assert verdict(_res(size=300_416), RULE) == ["int8 300416 B > 300000 B"]
    assert verdict(_res(floats=["DEPTHWISE_CONV_2D #7"]), RULE) == ["learned convolutions float in int8: DEPTHWISE_CONV_2D #7"]
    assert verdict(_res(status="failed"), RULE) == ["int8 failed: the converter's gate did not pass it"]


def test_the_test_suites_conversions_are_criteria_too():
    ok = {"test_int8": {"status": "verified", "gate_failures": [], "mean_coarse_cells": 0.017, "max_coarse_cells": 0.23, "mean_px": 0.135}}
    ok["test_fp16"] = {"max_px": 0.046, "mean_px": 0.009}
    assert verdict({**_res(), **ok}, RULE) == []
    gate = {**ok["test_int8"], "status": "failed", "gate_failures": ["holdout: landmarks: mean_px 0.5942 (limit <= 0.5)"]}
    assert verdict({**_res(), **ok, "test_int8": gate}, RULE) == [
        "the tests' int8 conversion failed: holdout: landmarks: mean_px 0.5942 (limit <= 0.5)"
    ]
    far = {**ok["test_int8"], "max_coarse_cells": 0.6}
    assert verdict({**_res(), **ok, "test_int8": far}, RULE) == ["the tests' int8 error: max_coarse_cells 0.6 (<= 0.5)"]
    fp16 = {"max_px": 0.19, "mean_px": 0.009}
    assert verdict({**_res(), **ok, "test_fp16": fp16}, RULE) == ["CoreML fp16 0.19 px max (<= 0.1), 0.009 px mean (< 0.02)"]


def test_bad_checkpoints_are_one_line_errors(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    for path, want in ((tmp_path / "missing.pt", "no such checkpoint"), (junk, "not zoo:heatmap2s weights")):
        r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "judge_candidate.py"), str(path)], capture_output=True, text=True, timeout=300)
        assert r.returncode == 2 and want in r.stderr and "Traceback" not in r.stderr, r.stderr
