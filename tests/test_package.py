"""devicekit package: rendering from manifests, static checks, names, --force, CLI, wheel contents.

Models are real: tiny .tflite files from TensorFlow's converter and a CoreML
.mlpackage from coremltools (tests/test_package_models.py), with manifests
built by devicekit.manifest. One of them is the unusual case the issue asks
for: grayscale 1x1x80x72 input with 5 landmarks (and 98 for CoreML).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_package_models import make_mlpackage, make_tflite  # noqa: E402

from devicekit.errors import InputError, UsageError  # noqa: E402
from devicekit.mobile_templates import render  # noqa: E402
from devicekit.mobile_templates.checks import check_constants, check_project, parse_errors  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CROP = {"detector": "opencv-haar-frontalface-default", "enlarge": 1.4, "square": True, "shift_y": 0.12, "rotation": False}
EURO = {"min_cutoff": 1.7, "beta": 0.02, "d_cutoff": 1.1}


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("pkg-models")
    return {
        "odd": make_tflite(d / "odd", "oddgray", (1, 1, 80, 72), 5, "gray", (0.0,), (255.0,), int8_output=True),
        "rgb": make_tflite(d / "rgb", "rgbnet", (1, 3, 64, 64), 68, "bgr", (104.0, 117.0, 123.0), (58.0, 57.0, 57.5),
                           int8_output=False, crop=CROP, one_euro=EURO, seed=1),
        "coreml": make_mlpackage(d / "ml", "graynet", (1, 1, 80, 72), 98, "gray", (0.0,), (255.0,)),
    }


def test_android_unusual_model_passes_every_static_check(models, tmp_path):
    r = render(models["odd"], "android", tmp_path / "a", app_id="org.example.track", name="OddTracker")
    assert check_project(r.out_dir) == []
    f = r.facts
    assert (f.width, f.height, f.channels, f.color, f.num_landmarks) == (72, 80, 1, "gray", 5)
    assert (f.input_dtype, f.output_dtype) == ("int8", "int8")
    assert r.warnings and "crop policy" in r.warnings[0]  # the manifest has none: documented default
    from devicekit.face.crop import CROP_POLICY

    assert f.crop == CROP_POLICY
    cfg = (r.out_dir / "oddtracker/src/main/java/org/example/track/oddtracker/ModelConfig.kt").read_text()
    assert "inputWidth = 72," in cfg and "inputHeight = 80," in cfg and 'color = "gray"' in cfg
    # the benchmark entry point lives in the benchmark build type's source set, not in the main manifest
    assert (r.out_dir / "app/src/benchmark/java/org/example/track/DevicekitBenchmarkActivity.kt").exists()
    assert not (r.out_dir / "app/src/main/java/org/example/track/DevicekitBenchmarkActivity.kt").exists()
    model = r.out_dir / r.model_file
    assert model.read_bytes() == models["odd"].read_bytes()
    assert r.size["fits"] and r.size["model_bytes"] == model.stat().st_size
    settings = (r.out_dir / "settings.gradle.kts").read_text()
    assert 'include(":oddtracker")' in settings


def test_constants_follow_the_manifest(models, tmp_path):
    r = render(models["rgb"], "android", tmp_path / "b")
    assert check_project(r.out_dir) == []
    cfg_path = next(r.out_dir.rglob("ModelConfig.kt"))
    cfg = cfg_path.read_text()
    assert "mean = doubleArrayOf(104.0, 117.0, 123.0)" in cfg and "std = doubleArrayOf(58.0, 57.0, 57.5)" in cfg
    assert "cropEnlarge = 1.4," in cfg and "oneEuroMinCutoff = 1.7," in cfg and 'outputDtype = "float32"' in cfg
    # a crop policy written before detector maps existed: devicekit's measured maps, said so
    assert r.warnings == ["the manifest has no detector maps; used the documented default"]
    from devicekit.face.boxmap import load_maps

    kp = load_maps()["keypoints"]
    assert f"KEYPOINT_MAP = DetectorMap(DetectorMap.KEYPOINTS, {kp['k']!r}, {kp['dx']!r}, {kp['dy']!r})" in cfg
    # the check catches a constant that drifts from the manifest
    bad = cfg.replace("cropShiftY = 0.12", "cropShiftY = 0.1")
    assert any("cropShiftY" in p for p in check_constants(bad, r.facts))
    cfg_path.write_text(bad)
    assert any("cropShiftY" in p for p in check_project(r.out_dir))


def test_checks_catch_broken_files(models, tmp_path):
    r = render(models["odd"], "android", tmp_path / "c")
    kt = next(r.out_dir.rglob("OneEuro.kt"))
    kt.write_text(kt.read_text().replace("fun reset() {", "fun reset() {{"))
    assert parse_errors(kt, "kotlin")
    man = r.out_dir / "app/src/main/AndroidManifest.xml"
    man.write_text(man.read_text().replace('<uses-permission android:name="android.permission.CAMERA" />', ""))
    (r.out_dir / "app/src/main/res/values/strings.xml").write_text("<resources><string>x</resources>")
    (r.out_dir / "README.md").write_text("@@MODEL_NAME@@")
    model = r.out_dir / r.model_file
    model.write_bytes(model.read_bytes() + b"\0")
    problems = "\n".join(check_project(r.out_dir))
    for what in ("OneEuro.kt", "CAMERA", "strings.xml", "placeholders", "sha256"):
        assert what in problems


def test_ios_unusual_model_and_pbxproj(models, tmp_path):
    from devicekit.mobile_templates.xcode import loads, referenced_paths

    r = render(models["coreml"], "ios", tmp_path / "i", app_id="com.example.face", name="GrayTracker")
    assert check_project(r.out_dir) == []
    assert r.facts.num_landmarks == 98 and r.facts.input_layout == "NCHW"
    proj = loads((r.out_dir / "GrayTrackerDemo.xcodeproj/project.pbxproj").read_text())
    refs = set(referenced_paths(proj))
    assert "GrayTrackerDemo/BenchmarkRunner.swift" in refs and "GrayTrackerKit" in refs
    assert (r.out_dir / r.model_file / "Manifest.json").exists()
    cfg = (r.out_dir / "GrayTrackerKit/Sources/GrayTrackerKit/ModelConfig.swift").read_text()
    assert "numLandmarks: 98," in cfg and 'inputName = "image"' in cfg
    # an app file the project does not know, and a project entry with no file, are both caught
    (r.out_dir / "GrayTrackerDemo/Extra.swift").write_text("import Foundation\n")
    (r.out_dir / "GrayTrackerDemo/ContentView.swift").unlink()
    swift = r.out_dir / "GrayTrackerKit/Sources/GrayTrackerKit/Processing.swift"
    swift.write_text(swift.read_text().replace("public func reset() {", "public func reset( {"))
    problems = "\n".join(check_project(r.out_dir))
    assert "does not reference" in problems and "ContentView.swift, which does not exist" in problems
    assert "Processing.swift" in problems and "target GrayTrackerDemo compiles" in problems


def test_ios_coreml_image_input(models, tmp_path):
    """converters/coreml.py's ImageType input (uint8 NHWC, scale/bias in the model): the app passes a pixel buffer."""
    src = models["coreml"]
    art = tmp_path / "img" / src.name
    shutil.copytree(src, art)
    m = json.loads(Path(str(src) + ".json").read_text())
    m["inputs"] = [{"name": "image", "shape": [1, 80, 72, 1], "dtype": "uint8", "layout": "NHWC", "quantization": None,
                    "description": "CoreML image (GRAYSCALE, CVPixelBuffer)"}]
    m["outputs"][0]["dtype"] = "float16"
    Path(str(art) + ".json").write_text(json.dumps(m))
    r = render(art, "ios", tmp_path / "o")
    assert check_project(r.out_dir) == []
    assert (r.facts.input_dtype, r.facts.output_dtype) == ("image", "float32")
    assert 'inputDtype: "image",' in next(r.out_dir.rglob("ModelConfig.swift")).read_text()


def test_pbxproj_parser_rejects_garbage():
    from devicekit.mobile_templates.xcode import PbxprojError, build_project, dumps, loads

    text = dumps(build_project("A", "K", "com.a.b", ["A.swift", "Info.plist"]))
    assert loads(text)["objects"]
    for bad in (text.replace(";", "", 3), text[:-10], text.replace("// !$*UTF8*$!", "")):
        with pytest.raises(PbxprojError):
            loads(bad)


def test_ios_needs_coreml(models, tmp_path):
    with pytest.raises(InputError, match="CoreML .mlpackage"):
        render(models["odd"], "ios", tmp_path / "x")
    r = render(models["odd"], "ios", tmp_path / "y", coreml=models["coreml"])
    assert r.facts.num_landmarks == 98
    with pytest.raises(InputError, match="android needs a .tflite"):
        render(models["coreml"], "android", tmp_path / "z")


def test_names_force_and_bad_input(models, tmp_path):
    for bad in ("bench", "com.1x", "com.example.class", "com..x", "com.ex-ample"):
        with pytest.raises(UsageError):
            render(models["odd"], "android", tmp_path / "n", app_id=bad)
    for bad in ("lower", "Has-Dash", "Decoder", "Self", "Type", "1Abc", "LandmarkDecoder", "GoldenRunner"):
        with pytest.raises(UsageError):
            render(models["odd"], "android", tmp_path / "n", name=bad)
    with pytest.raises(UsageError, match="platform"):
        render(models["odd"], "web", tmp_path / "n")
    out = tmp_path / "o"
    render(models["odd"], "android", out)
    with pytest.raises(UsageError, match="not empty") as exc:
        render(models["odd"], "android", out)
    assert "--force" in exc.value.one_line()
    # --force replaces what devicekit generated and nothing else: a file the user added, or a generated file the
    # user changed, stops it (it used to delete them); the IDE's and the build's own files do not
    (out / "mine.txt").write_text("user file")
    gradle = next(out.rglob("build.gradle*"))
    gradle.write_text(gradle.read_text() + "\n// my change\n")
    (out / "app" / "build" / "outputs").mkdir(parents=True)
    (out / "app" / "build" / "outputs" / "app-debug.apk").write_bytes(b"PK")
    with pytest.raises(UsageError, match="did not generate") as exc:
        render(models["odd"], "android", out, force=True, name="Other")
    assert "mine.txt" in exc.value.message and gradle.relative_to(out).as_posix() in exc.value.message
    assert "app-debug.apk" not in exc.value.message and (out / "mine.txt").read_text() == "user file"
    (out / "mine.txt").unlink()
    gradle.write_text(gradle.read_text().replace("\n// my change\n", ""))
    render(models["odd"], "android", out, force=True, name="Other")
    assert not (out / "facelandmarker").exists() and (out / "other").is_dir()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("x")
    with pytest.raises(UsageError, match="not generated by devicekit"):
        render(models["odd"], "android", foreign, force=True)
    assert (foreign / "keep.txt").exists()
    with pytest.raises(InputError, match="does not exist"):
        render(tmp_path / "missing.tflite", "android", tmp_path / "m")
    # a model changed after conversion, and a manifest of a parsing model
    copy = tmp_path / "copy" / models["odd"].name
    copy.parent.mkdir()
    shutil.copy(models["odd"], copy)
    shutil.copy(str(models["odd"]) + ".json", str(copy) + ".json")
    copy.write_bytes(copy.read_bytes() + b"\0")
    with pytest.raises(InputError, match="does not match its manifest"):
        render(copy, "android", tmp_path / "m")
    m = json.loads(Path(str(models["odd"]) + ".json").read_text())
    m["model"]["task"] = "parsing"
    shutil.copy(models["odd"], copy)
    Path(str(copy) + ".json").write_text(json.dumps(m))
    with pytest.raises(InputError, match="landmark models"):
        render(copy, "android", tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_cli(models, tmp_path):
    exe = [sys.executable, "-m", "devicekit"]
    out = tmp_path / "cli"
    p = subprocess.run([*exe, "package", str(models["rgb"]), "--platform", "android", "-o", str(out), "--json",
                        "--abi", "arm64-v8a"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    assert res["size"]["abis"] == ["arm64-v8a"] and res["facts"]["color"] == "bgr"
    assert '"arm64-v8a"' in (out / "app/build.gradle.kts").read_text()
    p = subprocess.run([*exe, "package", str(models["rgb"]), "--platform", "android", "-o", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "--force" in p.stderr and "Traceback" not in p.stderr
    p = subprocess.run([*exe, "package", str(models["rgb"]) + ".json", "--platform", "android", "-o", str(out), "--force", "--check"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "APK estimate" in p.stderr and "play-apk" in p.stderr and "all pass" in p.stderr
    p = subprocess.run([*exe, "package", str(tmp_path / "nope.tflite"), "--platform", "ios"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.count("\n") <= 2 and "does not exist" in p.stderr


def test_templates_ship_in_a_wheel(tmp_path):
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    names = set(zipfile.ZipFile(next(tmp_path.glob("devicekit-*.whl"))).namelist())
    tree = [q.relative_to(ROOT / "mobile_templates").as_posix() for q in (ROOT / "mobile_templates").rglob("*")
            if q.is_file() and "__pycache__" not in q.parts]
    missing = [t for t in tree if f"devicekit/mobile_templates/{t}" not in names]
    assert not missing and len(tree) > 30
    assert "devicekit/data/litert_runtime.json" in names


def test_crop_and_one_euro_defaults_have_one_definition(models, tmp_path):
    """The converter's manifest and the templates' defaults both take face.crop's and one_euro's constants."""
    from types import SimpleNamespace

    from devicekit.converters.base import base_manifest
    from devicekit.face.crop import CROP_POLICY
    from devicekit.face.one_euro import DEFAULT_PARAMS

    f = render(models["odd"], "android", tmp_path / "d").facts  # its manifest has neither: the defaults
    assert f.crop == CROP_POLICY and f.one_euro == DEFAULT_PARAMS
    model = SimpleNamespace(spec=SimpleNamespace(to_json=dict), info={"name": "m"})
    m = base_manifest(model, SimpleNamespace(name="tflite-fp32", family="tflite"), [], [], {}, ())
    assert m.preprocess["crop"] == CROP_POLICY and m.postprocess["one_euro"] == DEFAULT_PARAMS
