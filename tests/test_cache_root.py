"""One cache root (fsutil.cache_root) for every library module that keeps files between runs."""

from pathlib import Path

from devicekit.bench.build import apps_cache
from devicekit.face_data import face_data_dir
from devicekit.fsutil import cache_root


def test_env_overrides_and_empty_counts_as_unset(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVICEKIT_CACHE", str(tmp_path))
    assert cache_root() == tmp_path
    monkeypatch.setenv("DEVICEKIT_CACHE", "")
    assert cache_root() == Path.home() / ".cache" / "devicekit"
    monkeypatch.delenv("DEVICEKIT_CACHE")
    assert cache_root() == Path.home() / ".cache" / "devicekit"


def test_library_caches_sit_under_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVICEKIT_CACHE", str(tmp_path))
    assert apps_cache() == tmp_path / "apps"
    assert face_data_dir() is None  # nothing there and no fetch asked for
    (tmp_path / "face-data" / "unlabeled").mkdir(parents=True)
    assert face_data_dir() == tmp_path / "face-data"
