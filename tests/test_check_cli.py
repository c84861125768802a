"""`devicekit check` on the command line: JSON, gates and exit codes, and a run where torch/tensorflow cannot import."""

from __future__ import annotations

import json
import os

import pytest
from check_models import cli, keras_tflite, mediapipe, small_mlpackage, small_onnx

BLOCKER = '''
import sys
class _Block:
    BLOCKED = ("torch", "tensorflow", "tf_keras", "keras", "onnx2tf")
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.BLOCKED:
            raise ImportError(f"{name} is blocked for this test")
        return None
sys.meta_path.insert(0, _Block())
'''


def _blocked_env(tmp_path) -> dict:
    d = tmp_path / "site"
    d.mkdir()
    (d / "sitecustomize.py").write_text(BLOCKER)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(d) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_check_runs_without_torch_or_tensorflow(tmp_path):
    env = _blocked_env(tmp_path)
    import subprocess
    import sys

    probe = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "blocked" in probe.stderr
    probe = subprocess.run([sys.executable, "-c", "import tensorflow"], env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "blocked" in probe.stderr
    for model in (mediapipe("face_landmark_with_attention.tflite"), keras_tflite("int8"), small_onnx()):
        r = cli("check", str(model), "--json", env=env)
        assert r.returncode == 0, r.stderr
        report = json.loads(r.stdout)
        assert report["ok"] and report["sections"]["model"]["ops"] > 0
    pytest.importorskip("coremltools")
    r = cli("check", str(small_mlpackage()), "--json", env=env)  # CoreML protos without importing coremltools
    assert r.returncode == 0, r.stderr
    assert {"conv", "linear"} <= {row["op"] for row in json.loads(r.stdout)["sections"]["ops"]}
    r = cli("check", str(tmp_path / "missing.tflite"), env=env)
    assert r.returncode == 2 and "not found" in r.stderr


def test_json_and_gate_exit_codes():
    model = str(mediapipe("face_detection_short_range.tflite"))
    r = cli("check", model, "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["schema"] == 1 and rep["format"] == "tflite" and rep["ok"]
    by = {x["check"]: x for x in rep["results"]}
    assert by["budget:play-apk"]["status"] == "pass" and by["budget:play-apk"]["limit"] == 100_000_000
    assert rep["sections"]["memory"]["peak_bytes"] > 0 and rep["sections"]["compute"]["total_macs"] > 0
    r = cli("check", model, "--budget", "tiny=100KB", "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["failed"] == ["budget:tiny"]
    assert "gate(s) failed" in r.stderr
    r = cli("check", model, "--require", "int8")
    assert r.returncode == 1 and "int8" in r.stderr
    r = cli("check", str(mediapipe("selfie_segmentation.tflite")), "--runtime", "litert")
    assert r.returncode == 1 and "ops:custom" in r.stderr
    r = cli("check", model, "--memory-limit", "1KB")
    assert r.returncode == 1 and "memory" in r.stderr


def test_human_output_lists_ops_and_next_steps():
    r = cli("check", str(mediapipe("selfie_segmentation.tflite")), env={**os.environ, "COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    text = r.stdout + r.stderr
    for word in ("Convolution2DTransposeBias", "CONV_2D", "budget:play-apk", "next:"):
        assert word in text
