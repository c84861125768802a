"""The generated iOS project, defect by defect (issue 16): each defect the mobile review found has a check here that
fails on the old template. No Swift compiler or Xcode exists here: the Swift is parsed and checked structurally, and
its arithmetic is the Python port's (devicekit/app/port.py, checked against the compiled Kotlin twin)."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_package_models import make_mlpackage  # noqa: E402

from devicekit.mobile_templates import render  # noqa: E402
from devicekit.mobile_templates.checks import check_project, swift_public_init_gaps  # noqa: E402


@pytest.fixture(scope="module")
def ml(tmp_path_factory):
    return make_mlpackage(tmp_path_factory.mktemp("ml"), "graynet", (1, 1, 80, 72), 9, "gray", (0.0,), (255.0,))


@pytest.fixture(scope="module")
def project(ml, tmp_path_factory):
    r = render(ml, "ios", tmp_path_factory.mktemp("ios") / "proj", app_id="com.example.face", name="GrayTracker")
    assert check_project(r.out_dir) == []
    return r


KIT = "GrayTrackerKit/Sources/GrayTrackerKit"


def _sub(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new))


def _drop_init(d: Path) -> None:
    p = d / KIT / "BenchmarkWriter.swift"
    t = p.read_text()
    start = t.index("    public init(frame: Int")
    p.write_text(t[:start] + t[t.index("    }\n", start) + 6:])


@pytest.mark.parametrize("defect,edit,finding", [
    ("FrameTiming with only the internal memberwise init", _drop_init, "public struct FrameTiming has no public init"),
    ("a public Decoder shadowing Swift.Decoder",
     lambda d: _sub(d / KIT / "Processing.swift", "public struct LandmarkDecoder {", "public struct Decoder {"),
     "public type Decoder shadows"),
    ("XcodeGen info: path: without properties (regeneration drops the camera text)",
     lambda d: _sub(d / "project.yml", "      properties:\n", "      unused:\n"), "xcodegen would drop it"),
    ("the project targets iOS 16 while the model needs 17",
     lambda d: _sub(d / "GrayTrackerDemo.xcodeproj/project.pbxproj", "IPHONEOS_DEPLOYMENT_TARGET = 17.0;", "IPHONEOS_DEPLOYMENT_TARGET = 16.0;"),
     "is not the model's 17.0"),
    ("Package.swift on iOS 16", lambda d: _sub(d / "GrayTrackerKit/Package.swift", ".iOS(.v17)", ".iOS(.v16)"), "does not target iOS 17"),
    ("golden data missing from the test bundle",
     lambda d: (d / "GrayTrackerDemoTests/Golden/golden.json").unlink(), "Golden/golden.json, which does not exist"),
])
def test_checks_catch_each_ios_defect(project, tmp_path, defect, edit, finding):
    out = tmp_path / "copy"
    shutil.copytree(project.out_dir, out)
    edit(out)
    assert finding in "\n".join(check_project(out)), defect


def test_public_init_gap_finder():
    assert swift_public_init_gaps("public struct A {\n    public let x: Int\n}\n") == ["A"]
    assert swift_public_init_gaps("public struct A {\n    public let x: Int\n    public init(x: Int) { self.x = x }\n}\n") == []
    assert swift_public_init_gaps("public struct B {\n    public var n: Int { 3 }\n}\n") == []


@pytest.mark.parametrize("target,expect", [("iOS16", "16.0"), ("iOS18", "18.0")])
def test_deployment_target_comes_from_the_manifest(ml, tmp_path, target, expect):
    art = tmp_path / ml.name
    shutil.copytree(ml, art)
    m = json.loads(Path(str(ml) + ".json").read_text())
    m["quantization"] = {**(m.get("quantization") or {}), "deployment_target": target}
    Path(str(art) + ".json").write_text(json.dumps(m))
    r = render(art, "ios", tmp_path / "p")
    assert check_project(r.out_dir) == []
    pbx = (r.out_dir / "FaceLandmarkerDemo.xcodeproj/project.pbxproj").read_text()
    assert set(re.findall(r"IPHONEOS_DEPLOYMENT_TARGET = ([0-9.]+);", pbx)) == {expect}
    major = expect.split(".")[0]
    assert f".iOS(.v{major}), .macOS(.v{int(major) - 3})" in (r.out_dir / "FaceLandmarkerKit/Package.swift").read_text()
    assert f'iOS: "{expect}"' in (r.out_dir / "project.yml").read_text()


def test_swift_sources_fix_what_used_to_run_wrong(project):
    root = project.out_dir
    lm = (root / KIT / "GrayTracker.swift").read_text()
    # the compiled-model cache is keyed on the content loaded (the bundled model: its manifest sha256)
    assert "cacheKey: ModelConfig.modelSHA256" in lm and "cacheKey ?? GrayTracker.contentKey(modelURL)" in lm
    assert "package.path.hasPrefix(Bundle.main.bundlePath)" not in lm
    assert "public let compileUs: Int" in lm and "public let loadUs: Int" in lm
    assert "VNDetectFaceLandmarksRequest" in lm and "ModelConfig.keypointMap.fromKeypoints" in lm
    runner = (root / "GrayTrackerDemo/BenchmarkRunner.swift").read_text()
    assert 'env["DEVICEKIT_GOLDEN"] == "1"' in runner and "writeGolden" in runner and "compileUs: landmarker.compileUs" in runner
    assert "isIdleTimerDisabled = true" in (root / "GrayTrackerDemo/GrayTrackerDemoApp.swift").read_text()
    assert "computeUnits" in (root / "GrayTrackerDemo/ContentView.swift").read_text()
    assert ".rounded(.toNearestOrEven)" in (root / KIT / "Processing.swift").read_text()
    scheme = (root / "GrayTrackerDemo.xcodeproj/xcshareddata/xcschemes/GrayTrackerDemo.xcscheme").read_text()
    assert "GrayTrackerDemoTests.xctest" in scheme and '<TestAction buildConfiguration="Debug"' in scheme


def test_swift_arithmetic_is_the_python_ports(project):
    """The Swift Preprocessor/decoder are line-by-line twins of port.py (checked against the compiled Kotlin): the
    same constants and rules appear in each; the port reproduces the project's golden input and landmarks."""
    from devicekit.app import port
    from devicekit.app.golden import face

    swift = (project.out_dir / KIT / "Processing.swift").read_text() + (project.out_dir / KIT / "ModelSpec.swift").read_text()
    py = Path(port.__file__).read_text()
    for rule in ("9798", "19235", "3735", "16384", ">> 15", "0.5 / k", "- 0.5"):
        assert rule in swift and rule in py, rule
    gdir = project.out_dir / "GrayTrackerDemoTests/Golden"
    doc = json.loads((gdir / "golden.json").read_text())
    spec = project.facts.spec_json()
    img, _ = face()
    x = port.input_tensor(spec, img, tuple(doc["image"]["crop"]))
    assert x.dtype == np.float32 and x.tobytes() == (gdir / "golden_input.bin").read_bytes()
    ref = np.asarray(doc["outputs"][doc["landmarks"]["output"]]["values"])
    np.testing.assert_allclose(port.decode(spec, ref, tuple(doc["image"]["crop"])), doc["landmarks"]["image_px"], rtol=1e-12)
    assert doc["source"].startswith("devicekit MIL reference interpreter")
