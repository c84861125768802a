"""The quick tier of the fuzz harness (default suite): a few hundred seeded mutants of real .tflite, .onnx and
.mlpackage files through check, verify and bench, judged against the runtime's own verdict.

Zero of each problem class: crash (a signal), hang, traceback, silent accept (exit 0 on a file the runtime
refuses, crashes on, or cannot allocate / run), false refusal (exit 2 from check or bench on a sound file the
runtime runs) and the device/environment exit code for a bad file. The full tier (>= 1000 mutants, and a
comparison with main) is ``python benchmarks/fuzz.py``; its counts are in benchmarks/fuzz.md.
"""

from __future__ import annotations

import pytest

from fuzz.run import PROBLEMS, fuzz, make_plan, problems, summarize

QUICK = {
    "landmark": 60,
    "face_detection_short_range": 35,
    "selfie_segmentation": 25,
    "face_landmark": 15,
    "iris_landmark": 10,
    "conv_relu_gap": 20,
    "conv_pool_gemm": 20,
    "conv": 25,
}
SEED = 1717


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    from fuzz.seeds import faces_dir

    try:
        plan = make_plan(QUICK, SEED)
        faces = faces_dir(tmp_path_factory.mktemp("faces"), count=1)
    except Exception as exc:  # noqa: BLE001 - the seed files come from PyPI wheels and converters
        pytest.skip(f"fuzz seed files unavailable: {exc}")
    return fuzz(plan, tmp_path_factory.mktemp("fuzz"), faces, frames=1)


def test_quick_fuzz_has_no_problems(records):
    assert len(records) == sum(QUICK.values()) >= 200
    found = problems(records)
    assert not found, "\n".join(
        f"{p['verdict']}: {p['command']} on {p['mutant']} ({p['how']}; runtime says {p['oracle']}): exit {p['rc']}, {p['message']}"
        for p in found[:20]
    )
    s = summarize(records)
    for fmt, d in s["formats"].items():
        for c, v in d["commands"].items():
            assert not set(v["verdicts"]) & set(PROBLEMS), (fmt, c, v)


def test_quick_fuzz_exercises_every_verdict(records):
    """The mutants are not all rejected up front: the runtime runs many of them (so acceptance is tested too),
    refuses many, and kills itself on some (the files devicekit must never load in its own process)."""
    tfl = summarize(records)["formats"]["tflite"]["oracle"]
    assert tfl.get("runs", 0) >= 40 and tfl.get("refused", 0) >= 20 and tfl.get("crashed", 0) >= 5
    for c in ("check", "bench", "verify"):  # every command both accepted and refused some of them
        codes = [f["commands"][c]["exit_codes"] for f in summarize(records)["formats"].values()]
        assert sum(x.get("0", 0) for x in codes) > 0 and sum(x.get("2", 0) for x in codes) > 0, c
