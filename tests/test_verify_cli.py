"""`devicekit verify` end to end on real faces with a real .tflite (tiny model made here), report numbers
checked against a direct computation on one image, gates, errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner
from verify_fixtures import face_data, tiny_models

from devicekit.cli import app

pytest.importorskip("tensorflow")
runner = CliRunner()


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    d = tmp_path_factory.mktemp("faces")
    for f in (face_data() / "annotated").iterdir():
        if f.suffix in (".jpg", ".png", ".ppm", ".pts"):
            shutil.copy(f, d / f.name)
    return d


def _run(*args):
    from devicekit.cli._common import state

    state.stdout, state.json_mode, state.quiet = None, False, False  # fresh output mode per in-process run
    r = runner.invoke(app, ["verify", *map(str, args)])
    return r.exit_code, r.stdout, r.stderr if hasattr(r, "stderr") else r.output


def test_json_and_report_match_a_direct_computation(faces, tmp_path):
    import cv2
    import torch

    from devicekit.face import CROP_POLICY, detect_faces
    from devicekit.face.crop import box_from_detection, crop_image
    from devicekit.verify.annotations import read_pts

    ts, tfl, _ = tiny_models()
    code, out, err = _run(tfl, "--reference", ts, "--images", faces, "--report", tmp_path / "rep", "--json")
    assert code == 0, err
    res = json.loads(out)
    for part in ("reference", "converted", "delta"):
        for k in ("nme_inter_ocular", "nme_inter_pupil", "fr_0.08", "fr_0.10", "auc_0.08", "auc_0.10", "images"):
            assert k in res[part], (part, k)
    assert res["reference"]["images"] == 4 and res["annotated"] == 4
    assert res["agreement"]["max"] < 1e-2 and res["agreement"]["units"] == "image pixels"
    assert abs(res["delta"]["nme_inter_ocular"]) < 1e-4
    # direct computation on takeo.ppm: Haar box -> policy crop -> model -> back to image pixels -> NME
    img = cv2.imread(str(faces / "takeo.ppm"))
    x, y, w, h = detect_faces(img)[0]
    side = CROP_POLICY["enlarge"] * max(w, h)
    cx, cy = x + w / 2, y + h / 2 + CROP_POLICY["shift_y"] * h
    crop = crop_image(img, box_from_detection((x, y, w, h)), 128)[..., ::-1].astype(np.float32)
    inp = torch.from_numpy(((crop - 127.5) / 128.0).transpose(2, 0, 1)[None].copy())
    pred = torch.jit.load(str(ts))(inp)[0].numpy().astype(np.float64)
    pred_img = np.stack([cx + (pred[:, 0] - 64) * side / 128, cy + (pred[:, 1] - 64) * side / 128], 1)
    gt = np.loadtxt(faces / "takeo.pts", skiprows=3, max_rows=68) - 0.5  # .pts is 1-based
    np.testing.assert_allclose(gt, read_pts(faces / "takeo.pts"), atol=1e-5)
    want = np.linalg.norm(pred_img - gt, axis=1).mean() / np.linalg.norm(gt[36] - gt[45])
    row = next(f for f in res["faces"] if f["image"].endswith("takeo.ppm"))
    assert row["box_source"] == "detector"
    assert row["nme_reference"] == pytest.approx(want, rel=1e-4)
    # the mean over faces equals the mean of the per-face numbers, and the report files agree with stdout
    per = [f["nme_reference"] for f in res["faces"]]
    assert res["reference"]["nme_inter_ocular"] == pytest.approx(np.mean(per))
    assert res["reference"]["fr_0.10"] == pytest.approx(np.mean(np.array(per) > 0.10))
    saved = json.loads((tmp_path / "rep" / "verify.json").read_text())
    assert saved["reference"]["nme_inter_ocular"] == res["reference"]["nme_inter_ocular"]
    html = (tmp_path / "rep" / "verify.html").read_text()
    assert f"{res['reference']['nme_inter_ocular']:.4f}" in html and "<svg" in html and "data:image/png;base64," in html
    assert (tmp_path / "rep" / "ced.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_annotations_agreement_only_and_video(tmp_path):
    ts, tfl, _ = tiny_models()
    d = tmp_path / "imgs"
    d.mkdir()
    for n in ("single_face.jpg", "multi_face.jpg"):
        shutil.copy(face_data() / "unlabeled" / n, d / n)
    video = face_data() / "unlabeled" / "single_face.mp4"
    code, out, err = _run(tfl, "-r", ts, "--images", d, "--video", video, "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["annotated"] == 0 and "nme_inter_ocular" not in res["reference"]
    assert res["reference"]["images"] == res["converted"]["images"] == 2
    assert res["agreement"]["max"] < 1e-2
    v = res["video"]
    assert v["tracked"] >= 60 and v["reference"]["raw"]["frames"] == v["tracked"]
    assert v["one_euro"] == {"min_cutoff": 1.0, "beta": 0.05, "d_cutoff": 1.0}


def test_gates_exit_1(faces):
    ts, tfl, _ = tiny_models()
    code, out, err = _run(tfl, "-r", ts, "--images", faces, "--max-nme-increase", "0.003", "--max-fr-increase", "0.0")
    assert code == 0, err
    code, out, err = _run(tfl, "-r", ts, "--images", faces, "--max-nme-increase", "-0.5")
    assert code == 1 and "NME" in err


def test_errors_are_one_line(faces, tmp_path):
    ts, tfl, _ = tiny_models()
    code, _, err = _run(tmp_path / "missing.tflite", "-r", ts, "--images", faces)
    assert code == 2 and "not found" in err and "Traceback" not in err
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer at all")
    code, _, err = _run(bad, "-r", ts, "--images", faces)
    assert code == 2 and "Traceback" not in err
    code, _, err = _run(tfl, "-r", ts, "--images", tmp_path / "nowhere")
    assert code == 2 and "not found" in err
    code, _, err = _run(tfl, "-r", ts, "--images", faces, "--annotations", tmp_path / "none.json")
    assert code == 2 and "not found" in err


def test_coreml_runs_through_the_mil_reference_interpreter(faces, tmp_path):
    """A real .mlpackage of the tiny model is verified on real faces by the MIL interpreter."""
    pytest.importorskip("coremltools")
    from devicekit import converters as cv
    from devicekit import pipeline

    ts, tfl, _ = tiny_models()
    empty = tmp_path / "empty.mlpackage"
    empty.mkdir()
    shutil.copy(tfl.with_name(tfl.name + ".json"), tmp_path / "empty.mlpackage.json")
    code, out, err = _run(empty, "-r", ts, "--images", faces, "--json")
    assert code in (1, 2) and "Traceback" not in err and err.strip()  # a clean one-line error, no crash

    m = cv.load_model(str(ts), spec_overrides={"shape": (1, 3, 128, 128)}, landmarks=68)
    ml = pipeline.convert(m, ["coreml-fp16"], cv.ConvertOptions(spec=m.spec, out_dir=tmp_path / "o", calib_count=4,
                                                          check=False)).results[0].artifact
    code, out, err = _run(ml, "-r", ts, "--images", faces, "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["converted"].get("status") != "not verified", res["converted"]
    assert res["agreement"]["max"] < 0.5  # fp16 of a near-constant model: sub-pixel in image pixels
    assert abs(res["delta"]["nme_inter_ocular"]) < 1e-3
