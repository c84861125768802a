"""devicekit.registry: one table per kind of thing, and adding a target is one registration."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devicekit import registry
from devicekit.cli import app
from devicekit.errors import InputError, UsageError

runner = CliRunner()


def _cli(*args):
    from devicekit.cli._common import state

    state.json, state.stdout = False, None  # a fresh process's state (--json writes to the stdout seen first)
    return runner.invoke(app, [str(a) for a in args])


def test_every_table_is_complete():
    import devicekit.mobile_templates  # noqa: F401  (attaches the packagers)
    from devicekit.modelfile import READERS
    from devicekit.runtime import RUNNERS

    assert set(READERS) == set(RUNNERS) == set(registry.FORMATS)  # every format can be read and run
    for t in registry.TARGETS.values():
        assert t.format in registry.FORMATS and t.run is None or callable(t.run)
    for p in registry.PLATFORMS.values():
        assert set(p.formats) <= set(registry.FORMATS)
        assert p.name == "host" or p.packager is not None, p.name  # every app platform packages
    assert {"android", "ios", "web"} <= set(registry.PLATFORMS)


def test_lookups_give_one_line_errors():
    with pytest.raises(UsageError, match="unknown platform 'andriod'") as e:
        registry.platform("andriod")
    assert "did you mean android?" in e.value.hint
    with pytest.raises(InputError, match="unsupported model file type '.pb'"):
        registry.format_of("m.pb")
    with pytest.raises(RuntimeError, match="registered twice"):
        registry.register_format(registry.FORMATS["onnx"])


def test_describe_makes_the_docs_tables():
    md = registry.describe("targets")
    assert md.splitlines()[0].startswith("| target | format |")
    assert all(f"| {t} |" in md for t in registry.TARGETS)
    doc = (Path(__file__).resolve().parents[1] / "docs" / "architecture.md").read_text()
    for table in ("targets", "formats", "platforms"):
        assert registry.describe(table) in doc, f"docs/architecture.md's {table} table is stale: regenerate it"


TESTS = Path(__file__).resolve().parent


def _cli_with_toy(*args) -> subprocess.CompletedProcess:
    """The devicekit command in a fresh process that registered the toy target first (tests/toy_target.py)."""
    code = f"import sys; sys.path.insert(0, {str(TESTS)!r}); import toy_target; from devicekit.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=600)


def test_a_toy_target_runs_through_convert_check_and_package(tmp_path):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "out"
    r = _cli_with_toy("convert", "zoo:heatmap2s", "--target", "toy-onnx", "-o", out, "--no-verify", "--calib-count", "8", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    art = doc["artifacts"][0]
    assert art["target"] == "toy-onnx" and art["status"] == "verified"  # judged by onnxruntime against PyTorch
    assert art["check"]["ok"]  # convert's own `check` ran on it
    onnx_file = Path(art["artifact"])
    assert onnx_file.suffix == ".onnx" and json.loads(Path(art["manifest"]).read_text())["target"] == "toy-onnx"

    r = _cli_with_toy("check", onnx_file, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["format"] == "onnx"

    r = _cli_with_toy("package", onnx_file, "--platform", "android", "-o", tmp_path / "app")
    assert r.returncode == 2, r.stderr
    line = " ".join(r.stderr.split())
    assert "android apps embed .tflite models, not heatmap2s.toy-onnx.onnx" in line
    assert "no app platform embeds .onnx models" in line
    assert not (tmp_path / "app").exists()


def test_an_option_no_requested_target_takes_is_refused_before_any_work(tmp_path):
    r = _cli("convert", "zoo:heatmap2s", "--target", "tflite-fp32", "--palettize", "4", "-o", tmp_path / "o")
    assert r.exit_code == 2
    assert "--palettize does not apply to tflite-fp32" in r.output and "coreml-fp16" in r.output
    assert not (tmp_path / "o").exists()  # refused before anything was converted or written
