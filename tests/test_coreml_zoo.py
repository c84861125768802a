"""Slow matrix: every zoo model to every CoreML target through ``convert()``, checked by the MIL reference interpreter.

fp16 is held to 1e-2 relative on outputs and 0.1 px on landmarks; int8
weights and W8A8 have their landmark error measured by the pipeline and
gated with ``max_error`` like the TFLite path.
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("coremltools")

from devicekit.converters.base import ConvertOptions  # noqa: E402
from devicekit.converters.load import load_model  # noqa: E402
from devicekit.manifest import read_manifest  # noqa: E402
from devicekit.pipeline import convert  # noqa: E402
from devicekit.zoo import ZOO  # noqa: E402

TARGETS = ["coreml-fp16", "coreml-int8", "coreml-w8a8"]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_model_all_coreml_targets(name, tmp_path):
    import coremltools as ct

    from devicekit.face_data import face_data_dir

    model = load_model(f"zoo:{name}")
    # calibrate on real faces when present: trained heatmap2s W8A8 calibrated on 4 SYNTHETIC images reached 2.45 px
    data = face_data_dir()
    calib_dir = data / "unlabeled" if data is not None else None
    opts = ConvertOptions(spec=model.spec, out_dir=tmp_path, calib_dir=calib_dir, calib_count=4, max_error=2.0)
    rep = convert(model, TARGETS, opts)
    assert not rep.gate_failures, rep.gate_failures
    by = {r.target: r for r in rep.results}
    assert set(by) == set(TARGETS)
    for t, r in by.items():
        spec = ct.models.MLModel(str(r.artifact), skip_model_load=True).get_spec()
        assert dict(spec.description.metadata.userDefined)["devicekit.target"] == t
        err = r.summary["error"]
        assert err["images"] == 4
        assert read_manifest(r.artifact).results["error_vs_reference"] == err
    fp16 = by["coreml-fp16"].summary["error"]
    assert fp16["max_rel"] < 1e-2
    if model.info.get("landmarks"):
        assert fp16["max_px"] < 0.1
        for t in ("coreml-int8", "coreml-w8a8"):
            assert "mean_px" in by[t].summary["error"]
    assert by["coreml-w8a8"].summary["op_counts"].get("quantize", 0) > 0


@pytest.mark.slow
def test_palettized_zoo_model(tmp_path):
    """4/6/8-bit k-means palettes: constexpr_lut_to_dense decoded by the interpreter, error falls with more bits.

    Measured on random-init heatmap2s (max px): 7.2 (4 bit), 2.2 (6 bit), 0.31 (8 bit), per-tensor palettes.
    """
    model = load_model("zoo:heatmap2s")
    errs = {}
    for bits in (4, 6, 8):
        opts = ConvertOptions(spec=model.spec, out_dir=tmp_path / str(bits), calib_count=2, target_options={"palettize": bits})
        r = convert(model, ["coreml-int8"], opts).results[0]
        assert r.summary["op_counts"].get("constexpr_lut_to_dense", 0) > 0
        assert read_manifest(r.artifact).quantization["mode"] == f"palettized-{bits}bit"
        errs[bits] = r.summary["error"]["max_px"]
    assert errs[4] > errs[6] > errs[8] > 0
    assert errs[4] < 32  # a decoding bug (wrong bit order, wrong palette) throws points anywhere in the 128 px input
