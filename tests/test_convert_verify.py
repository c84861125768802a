"""Which faces `convert` verifies each artifact on, and its NME gate (pure logic; the real run is in test_verify_demo)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from devicekit import converters as cv
from devicekit.config import InputSpec
from devicekit.errors import InputError
from devicekit.pipeline import _verify_gates, verify_faces

SPEC = InputSpec(shape=(1, 3, 128, 128), mean=(127.5,), std=(128.0,), color="rgb")


def _model(landmarks):
    return SimpleNamespace(info={"landmarks": landmarks})


def _opts(tmp_path, **extra):
    calib = extra.pop("calib", None)
    return cv.ConvertOptions(spec=SPEC, out_dir=tmp_path / "out", calib_dir=calib, **extra)


def _faces(folder: Path, n: int, pts: bool) -> Path:
    folder.mkdir()
    for i in range(n):
        (folder / f"f{i:02d}.png").write_bytes(b"listed by suffix; never decoded here")
        if pts:
            (folder / f"f{i:02d}.pts").write_text("version: 1\nn_points: 68\n{\n" + "1 1\n" * 68 + "}\n")
    return folder


def test_no_faces_for_non_landmark_models_or_no_verify(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVICEKIT_CACHE", str(tmp_path / "empty-cache"))
    calib = _faces(tmp_path / "calib", 3, pts=False)
    assert verify_faces(_model(None), _opts(tmp_path, calib=calib)) is None
    assert verify_faces(_model(68), _opts(tmp_path, calib=calib, verify=False)) is None
    assert verify_faces(_model(68), _opts(tmp_path)) is None  # no cache, no calibration folder


def test_explicit_folder_wins_and_a_missing_one_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVICEKIT_CACHE", str(tmp_path / "empty-cache"))
    mine = _faces(tmp_path / "mine", 2, pts=True)
    f = verify_faces(_model(68), _opts(tmp_path, verify_images=str(mine), calib=_faces(tmp_path / "calib", 3, pts=False)))
    assert [p.name for p in f.images] == ["f00.png", "f01.png"]
    with pytest.raises(InputError, match="not found"):
        verify_faces(_model(68), _opts(tmp_path, verify_images=str(tmp_path / "nope")))


def test_annotated_cache_for_68_points_else_capped_calibration_images(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("DEVICEKIT_CACHE", str(cache))
    (cache / "face-data" / "unlabeled").mkdir(parents=True)
    _faces(cache / "face-data" / "annotated", 3, pts=True)
    calib = _faces(tmp_path / "calib", 20, pts=False)
    f = verify_faces(_model(68), _opts(tmp_path, calib=calib))
    assert len(f.images) == 3 and "annotated" in f.source
    f = verify_faces(_model(5), _opts(tmp_path, calib=calib))  # not iBUG-68: agreement on calibration images
    assert len(f.images) == 16 and "agreement only" in f.source


def test_nme_gate(tmp_path):
    ran = {"status": "ran", "delta": {"nme_inter_ocular": 0.004, "fr_0.08": 0.0, "fr_0.10": 0.0}}
    assert _verify_gates(ran, _opts(tmp_path)) == []
    assert _verify_gates(ran, _opts(tmp_path, max_nme_increase=0.005)) == []
    assert "rose by 0.0040" in _verify_gates(ran, _opts(tmp_path, max_nme_increase=0.003))[0]
    skipped = {"status": "skipped", "reason": "no faces"}
    assert "could not be checked (no faces)" in _verify_gates(skipped, _opts(tmp_path, max_nme_increase=0.003))[0]
