"""`devicekit demo` finds the artifact convert wrote through its manifest, not by file name."""

from pathlib import Path

import pytest

from devicekit.cli.demo import _artifact, _steps
from devicekit.errors import DevicekitError
from devicekit.manifest import Manifest, finalize


def _made(out: Path, name: str, target: str, source: str) -> Path:
    art = out / name
    art.write_bytes(name.encode())
    finalize(
        Manifest(artifact=name, target=target, format="tflite", model={"name": "m", "source": source}, inputs=[], outputs=[], preprocess={}), art
    )
    return art


def test_the_artifact_comes_from_the_manifest(tmp_path):
    _made(tmp_path, "a.tflite", "tflite-fp32", "zoo:heatmap2s")
    _made(tmp_path, "b.tflite", "tflite-int8", "zoo:other")
    want = _made(tmp_path, "renamed-by-someone.tflite", "tflite-int8", "zoo:heatmap2s")
    (tmp_path / "report.json").write_text("[1, 2]")  # not a manifest: passed over
    assert _artifact(tmp_path, "zoo:heatmap2s") == want
    with pytest.raises(DevicekitError, match="no tflite-int8 manifest for zoo:missing"):
        _artifact(tmp_path, "zoo:missing")


def test_steps_after_convert_use_that_artifact(tmp_path):
    art = tmp_path / "x.tflite"
    names = [n for n, _ in _steps(tmp_path, art, "zoo:heatmap2s", None, 10)]
    assert names == ["check", "package", "bench", "report"]  # no faces: no verify
    steps = dict(_steps(tmp_path, art, "zoo:heatmap2s", tmp_path, 10))
    assert steps["verify"][1] == str(art) and steps["bench"][1] == str(art)
