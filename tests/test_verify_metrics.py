"""Metrics and annotation readers (pure logic; hand-computed expectations)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from devicekit.errors import InputError
from devicekit.verify import metrics
from devicekit.verify.annotations import find_annotations, read_json, read_pts, write_pts


def _face(seed=0):
    rng = np.random.default_rng(seed)
    gt = rng.uniform(0, 100, (68, 2))
    gt[36] = (20.0, 40.0)
    gt[45] = (80.0, 40.0)  # inter-ocular 60
    return gt


def test_nme_inter_ocular_and_pupil_by_hand():
    gt = _face()
    pred = gt + np.array([3.0, 4.0])  # every point off by 5 px
    assert metrics.nme_per_face(pred, gt)[0] == pytest.approx(5 / 60)
    lp, rp = gt[36:42].mean(0), gt[42:48].mean(0)
    assert metrics.nme_per_face(pred, gt, "inter_pupil")[0] == pytest.approx(5 / np.linalg.norm(lp - rp))


def test_failure_rate_auc_ced():
    nmes = np.array([0.02, 0.05, 0.09, 0.2])
    assert metrics.failure_rate(nmes, 0.08) == 0.5
    assert metrics.failure_rate(nmes, 0.10) == 0.25
    # AUC@0.10 = mean over faces of (0.10 - nme)+ / 0.10
    assert metrics.auc(nmes, 0.10) == pytest.approx((0.08 + 0.05 + 0.01 + 0) / 4 / 0.10)
    # and it equals the numeric integral of the CED
    x, y = metrics.ced(nmes, 0.10, 100001)
    assert metrics.auc(nmes, 0.10) == pytest.approx(np.trapz(y, x) / 0.10, abs=1e-4)
    assert metrics.auc(np.zeros(3), 0.08) == pytest.approx(1.0)


def test_summary_per_landmark_region_and_delta():
    gt = np.stack([_face(0), _face(1)])
    pred = gt.copy()
    pred[0, 30] += (12.0, 0.0)  # nose tip off by 0.2 inter-ocular on face 0
    s = metrics.summary(pred, gt)
    assert s["images"] == 2
    assert s["nme_inter_ocular"] == pytest.approx((12 / 60 / 68) / 2)
    assert s["per_landmark"]["nme_inter_ocular"][30] == pytest.approx(0.1)
    assert s["per_landmark"]["fr_0.10"][30] == 0.5 and s["per_landmark"]["fr_0.10"][0] == 0
    assert s["landmark_fr"]["0.10"] == pytest.approx(1 / 136)
    assert s["per_region"]["nose"]["nme_inter_ocular"] == pytest.approx(0.2 / 9 / 2)
    assert s["per_region"]["mouth"]["nme_inter_ocular"] == 0
    d = metrics.delta(s, metrics.summary(gt, gt))
    assert d["nme_inter_ocular"] == pytest.approx(-s["nme_inter_ocular"]) and d["images"] == 2


def test_metrics_reject_bad_shapes():
    with pytest.raises(ValueError):
        metrics.nme_per_face(np.zeros((68, 2)), np.zeros((67, 2)))


def test_pts_is_one_based(tmp_path):
    p = tmp_path / "a.pts"
    p.write_text("version: 1\nn_points:  2\n{\n1 1\n10.5 20\n}\n")
    pts = read_pts(p)
    # the centre of the top-left pixel is (1, 1) in .pts and (0.5, 0.5) here
    np.testing.assert_allclose(pts, [[0.5, 0.5], [10.0, 19.5]])
    write_pts(tmp_path / "b.pts", pts)
    np.testing.assert_allclose(read_pts(tmp_path / "b.pts"), pts, atol=1e-5)


@pytest.mark.parametrize("text", ["garbage", "version: 1\nn_points: 3\n{\n1 2\n}\n", "n_points: x\n{\n}\n"])
def test_bad_pts_is_one_line_error(tmp_path, text):
    p = tmp_path / "bad.pts"
    p.write_text(text)
    with pytest.raises(InputError):
        read_pts(p)


def test_json_forms_and_lookup(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"")
    (tmp_path / "y.jpg").write_bytes(b"")
    (tmp_path / "z.jpg").write_bytes(b"")
    f = tmp_path / "ann.json"
    f.write_text(json.dumps({"coords": "zero_based", "faces": {"x.jpg": [[0, 0], [4, 5]]}}))
    assert read_json(f)["x.jpg"][1].tolist() == [4.5, 5.5]
    (tmp_path / "y.json").write_text(json.dumps({"coords": "one_based", "landmarks": [[1, 1]]}))
    (tmp_path / "z.pts").write_text("version: 1\nn_points: 1\n{\n2 2\n}\n")
    imgs = [tmp_path / n for n in ("x.jpg", "y.jpg", "z.jpg")]
    found = find_annotations(imgs, f)
    assert found[imgs[0]].tolist() == [[0.5, 0.5], [4.5, 5.5]]
    assert found[imgs[1]].tolist() == [[0.5, 0.5]]  # next to the image, one-based
    assert found[imgs[2]].tolist() == [[1.5, 1.5]]
    (tmp_path / "bad.json").write_text(json.dumps({"coords": "inches", "landmarks": [[1, 1]]}))
    with pytest.raises(InputError):
        read_json(tmp_path / "bad.json")
    with pytest.raises(InputError):
        find_annotations(imgs, tmp_path / "missing.json")
