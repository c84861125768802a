"""Every zoo model to every TFLite target, each loaded and run in ai_edge_litert (slow: make test-slow)."""

import numpy as np
import pytest

pytest.importorskip("torch")

from devicekit import converters as cv  # noqa: E402
from devicekit import pipeline  # noqa: E402
from devicekit.runtime import TFLiteRunner, match_outputs  # noqa: E402
from devicekit.zoo import ZOO  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_model_converts_to_every_tflite_target(name, tmp_path):
    from test_check_xnnpack import assert_same_verdict

    m = cv.load_model(f"zoo:{name}")
    rep = pipeline.convert(m, ["tflite-fp32", "tflite-fp16", "tflite-int8"], cv.ConvertOptions(spec=m.spec, out_dir=tmp_path, calib_count=8))
    for r in rep.results:  # devicekit check says what LiteRT's delegate does with every file the zoo converts to
        assert assert_same_verdict(r.artifact) in ("delegated", "partly"), r.target
    x = cv.calibration.synthetic_calibration(m.spec, 1, seed=5).inputs
    ref = m.run_torch(x)
    for r in rep.results:
        got = match_outputs(TFLiteRunner(r.artifact).run(x), ref)
        assert all(np.isfinite(g).all() for g in got)
        if r.target != "tflite-int8":
            assert r.summary["error"]["max_rel"] < 5e-3, r.target
    if name.startswith("basiccnn") or name == "heatmap2s":
        int8 = rep.results[2]
        assert "TRANSPOSE" not in int8.summary["op_counts"]
    if name == "basiccnn-pool3":
        assert rep.results[2].summary["size_bytes"] <= 0.3 * rep.results[0].summary["size_bytes"]


@pytest.mark.slow
def test_litert_torch_backend(tmp_path):
    from devicekit.converters.litert_torch_backend import backend_python
    from devicekit.errors import EnvironmentMissing

    try:
        backend_python()
    except EnvironmentMissing:
        pytest.skip("litert-torch environment not set up (make setup-litert-torch)")
    m = cv.load_model("zoo:basiccnn-pool3")
    opts = cv.ConvertOptions(spec=m.spec, out_dir=tmp_path, calib_count=8, backend="litert-torch")
    rep = pipeline.convert(m, ["tflite-fp32", "tflite-int8"], opts)
    assert rep.results[0].summary["error"]["max_rel"] < 1e-3
    assert rep.results[1].manifest.quantization["backend"] == "litert-torch"
