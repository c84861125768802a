"""The manifest chain at bench: summary.json names the device (device_name) and carries the artifact's target,
model, precision and runtime from its manifest; runs written before (target = the device) still read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from device_tests.models import tiny_tflite  # noqa: E402


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A host run of an artifact with a manifest (new), and the same run as an older devicekit wrote it (old)."""
    from devicekit.manifest import Manifest, TensorInfo, finalize

    d = tmp_path_factory.mktemp("manifest-chain")
    art = d / "tiny.tflite-fp32.tflite"
    art.write_bytes(tiny_tflite().read_bytes())
    finalize(
        Manifest(
            artifact=art.name,
            target="tflite-fp32",
            format="tflite",
            model={"name": "tiny", "source": "test", "task": "landmarks", "landmarks": 68},
            inputs=[TensorInfo("input", [1, 64, 64, 3], "float32", "NHWC")],
            outputs=[TensorInfo("out", [1, 136], "float32")],
            preprocess={"shape": [1, 3, 64, 64], "layout": "NCHW", "mean": [127.5] * 3, "std": [128.0] * 3},
            quantization={"mode": "fp32"},
        ),
        art,
    )
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "devicekit",
            "bench",
            str(art),
            "--device",
            "host",
            "--frames",
            "20",
            "--warmup",
            "2",
            "--runs-dir",
            str(d / "runs"),
            "--run-id",
            "new",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(ROOT),
        env=dict(os.environ),
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, r.stderr
    new, old = d / "runs" / "new", d / "runs" / "old"
    old.mkdir()
    for f in ("frames.csv", "device.json"):
        (old / f).write_bytes((new / f).read_bytes())
    s = json.loads((new / "summary.json").read_text())
    for key in ("device_name", "model", "precision", "runtime"):
        s.pop(key)
    (old / "summary.json").write_text(json.dumps({**s, "run": "old", "target": "host"}))
    return art, new, old


def test_summary_names_the_device_and_copies_the_manifest(runs):
    _, new, _ = runs
    s = json.loads((new / "summary.json").read_text())
    assert s["device_name"] == "host" and s["target"] == "tflite-fp32"
    assert (s["model"], s["precision"], s["runtime"]) == ("tiny", "fp32", None)  # package recorded no host runtime
    assert isinstance(s["device"], dict)  # the app's device.json, as before


def test_runtime_is_the_one_package_recorded_for_the_platform(runs):
    from devicekit.bench.runner import run_meta
    from devicekit.manifest import record_results

    art, _, _ = runs
    record_results(art, {"runtimes": {"android": "LiteRT 2.1.0 (Maven)"}})
    m = run_meta(art, "pixel7", "android")
    assert (m["device_name"], m["platform"], m["target"], m["runtime"]) == ("pixel7", "android", "tflite-fp32", "LiteRT 2.1.0 (Maven)")


def test_an_artifact_without_a_manifest_has_none(tmp_path):
    from devicekit.bench.runner import run_meta

    art = tmp_path / "bare.tflite"
    art.write_bytes(tiny_tflite().read_bytes())
    m = run_meta(art, "host", "host")
    assert m["device_name"] == "host" and all(m[k] is None for k in ("target", "model", "precision", "runtime"))


def test_an_old_summary_reads_with_its_target_as_the_device(runs):
    from devicekit.bench.results import load_run

    _, _, old = runs
    s = load_run(old)
    assert s["device_name"] == "host"
    assert all(s[k] is None for k in ("target", "model", "precision", "runtime"))


def test_report_has_model_and_precision_columns_for_old_and_new_runs(runs):
    from devicekit.report import render

    _, new, old = runs
    md = render([new, old], "md")
    head = next(ln for ln in md.splitlines() if ln.startswith("| device"))
    assert head.startswith("| device | model | precision | delegate |")
    rows = [ln for ln in md.splitlines() if ln.startswith("| ") and ln != head]
    assert " [new] | tiny | fp32 | xnnpack |" in rows[0] and " [old] | - | - | xnnpack |" in rows[1]
    table = json.loads(render([new, old], "json"))["table"]
    assert (table[0]["model"], table[0]["precision"], table[1]["model"]) == ("tiny", "fp32", None)
