"""Models nobody here wrote: the torchvision corpus in ../shared/corpus through `devicekit convert` (slow).

For every corpus model: fp32 and int8 pass the default gates on real photos
(ImageNet normalisation, the face-data cache as calibration), both files
load and run under LiteRT's default interpreter with XNNPACK, devicekit
check's XNNPACK verdict is the real delegate's, int8 is int8 (>= 90 % of
MACs in integer ops) and at most 0.30x the fp32 file. Latency is measured
in benchmarks/coverage.py, not here (no timed unit tests).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")
from test_check_xnnpack import assert_same_verdict  # noqa: E402
from verify_fixtures import face_data  # noqa: E402

from devicekit import converters as cv  # noqa: E402
from devicekit import pipeline  # noqa: E402

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
IMAGENET = {"mean": (123.675, 116.28, 103.53), "std": (58.395, 57.12, 57.375)}


def _models() -> list[str]:
    """The corpus's models (index.json: name -> source, input, params, ...)."""
    index = CORPUS / "index.json"
    if not index.exists():
        return []
    return sorted(n for n in json.loads(index.read_text()) if (CORPUS / f"{n}.pt2").exists())


@pytest.mark.slow
@pytest.mark.parametrize("name", _models() or ["(no corpus)"])
def test_corpus_model_converts_and_passes(name, tmp_path):
    if name == "(no corpus)":
        pytest.skip(f"no model corpus at {CORPUS}")
    m = cv.load_model(str(CORPUS / f"{name}.pt2"), spec_overrides=IMAGENET)
    opts = cv.ConvertOptions(spec=m.spec, out_dir=tmp_path, calib_dir=face_data() / "unlabeled", calib_count=64)
    rep = pipeline.convert(m, ["tflite-fp32", "tflite-int8"], opts)
    by = {r.target: r for r in rep.results}
    for r in rep.results:
        assert r.status == "verified", (r.target, r.summary["gate"]["failures"])
        assert assert_same_verdict(r.artifact) in ("delegated", "partly")
    int8, fp32 = by["tflite-int8"].summary, by["tflite-fp32"].summary
    assert int8["int8_mac_share"] >= 0.9, int8["int8_mac_share"]
    assert int8["size_bytes"] <= 0.30 * fp32["size_bytes"], (int8["size_bytes"], fp32["size_bytes"])


@pytest.mark.slow
@pytest.mark.parametrize("name", _models() or ["(no corpus)"])
def test_corpus_model_converts_to_coreml_and_passes(name, tmp_path):
    """Every corpus model to coreml-fp16, coreml-int8 and coreml-w8a8, each passing its gate in the MIL interpreter."""
    if name == "(no corpus)":
        pytest.skip(f"no model corpus at {CORPUS}")
    pytest.importorskip("coremltools")
    m = cv.load_model(str(CORPUS / f"{name}.pt2"), spec_overrides=IMAGENET)
    opts = cv.ConvertOptions(spec=m.spec, out_dir=tmp_path, calib_dir=face_data() / "unlabeled", calib_count=64,
                             check=False, verify=False)
    rep = pipeline.convert(m, ["coreml-fp16", "coreml-int8", "coreml-w8a8"], opts)
    for r in rep.results:
        assert r.status == "verified", (r.target, r.summary["gate"]["failures"], r.summary["gate"].get("not_run"))
