"""A CNN-attention hybrid nobody here wrote the converter for: LayerNorm, attention softmax, exact GELU, matmuls.

Before: onnx2tf stopped at "'tf.Erf' op is neither a custom op nor a flex
op" (exact GELU); with GELU as one op, the int8 search treated everything
after the first attention softmax as coordinate math (too big to keep float,
so never tried) and failed the gate; its LayerNorm and softmax ops ran on
LiteRT's builtin kernels between XNNPACK partitions.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")
torch = pytest.importorskip("torch")

import thirdparty_hybrid  # noqa: E402
from test_check_xnnpack import assert_same_verdict  # noqa: E402
from verify_fixtures import face_data  # noqa: E402

from devicekit import converters as cv  # noqa: E402
from devicekit import pipeline  # noqa: E402

IMAGENET = {"mean": (123.675, 116.28, 103.53), "std": (58.395, 57.12, 57.375)}


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    d = tmp_path_factory.mktemp("hybrid")
    net = thirdparty_hybrid.make()
    torch.export.save(torch.export.export(net, (torch.zeros(1, 3, 64, 64),)), d / "hybrid.pt2")
    m = cv.load_model(str(d / "hybrid.pt2"), spec_overrides=IMAGENET)
    opts = cv.ConvertOptions(spec=m.spec, out_dir=d / "out", calib_dir=face_data() / "unlabeled", verify=False)
    rep = pipeline.convert(m, ["tflite-fp32", "tflite-int8"], opts)
    return {r.target: r for r in rep.results}


def test_hybrid_converts_and_passes_the_gate(converted):
    for r in converted.values():
        assert r.status == "verified", (r.target, r.summary["gate"]["failures"])
    assert converted["tflite-fp32"].summary["op_counts"].get("GELU") == 2
    int8 = converted["tflite-int8"].summary
    assert int8["int8_mac_share"] >= 0.9 and int8["size_bytes"] <= 0.4 * converted["tflite-fp32"].summary["size_bytes"]
    man = json.loads(Path(str(converted["tflite-int8"].artifact) + ".json").read_text())
    kept = {r["region"] for r in man["quantization"]["float_regions"]}
    assert any(k.startswith("SOFTMAX") for k in kept) and any(k.startswith("GELU") for k in kept), kept


def test_hybrid_int8_runs_whole_under_xnnpack(converted):
    for r in converted.values():
        assert assert_same_verdict(r.artifact) == "delegated", r.target
