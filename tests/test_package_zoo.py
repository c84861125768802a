"""`devicekit package` on the real converter's artifacts: the demo model (zoo:heatmap2s) and the
grayscale zoo:basiccnn-pool3, as tflite-int8 (Android) and coreml-fp16 (iOS); every static check
passes, and the generated Kotlin decodes the demo model's real outputs on a real face like Python."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from devicekit.mobile_templates import render
from devicekit.mobile_templates.checks import check_project

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo")
    arts = {}
    for model in ("heatmap2s", "basiccnn-pool3"):
        for target in ("tflite-int8", "coreml-fp16"):
            p = subprocess.run([sys.executable, "-m", "devicekit", "convert", f"zoo:{model}", "--target", target, "-o", str(out),
                                "--no-check"], capture_output=True, text=True, timeout=1800)
            assert p.returncode == 0, p.stderr[-3000:]
            arts[model, target] = out / f"{model}.{target}.{'tflite' if target.startswith('tflite') else 'mlpackage'}"
            assert arts[model, target].exists()
    return arts


@pytest.mark.parametrize("model", ["heatmap2s", "basiccnn-pool3"])
def test_both_platforms_pass_every_check(converted, model, tmp_path):
    a = render(converted[model, "tflite-int8"], "android", tmp_path / "a")
    i = render(converted[model, "coreml-fp16"], "ios", tmp_path / "i")
    assert check_project(a.out_dir) == [] and check_project(i.out_dir) == []
    color = "rgb" if model == "heatmap2s" else "gray"
    assert a.facts.color == i.facts.color == color and a.facts.num_landmarks == i.facts.num_landmarks == 68
    assert a.size["fits"]
    p = subprocess.run([sys.executable, "-m", "devicekit", "package", str(converted[model, "tflite-int8"]), "--platform", "android",
                        "-o", str(tmp_path / "cli")], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and "APK estimate" in p.stderr


@pytest.mark.skipif(shutil.which("kotlinc") is None, reason="needs Debian's kotlin")
def test_kotlin_decodes_the_demo_model_like_python(converted, tmp_path):
    from ai_edge_litert.interpreter import Interpreter
    from test_package_kotlin import _boxes, _image, compile_cli, write_inputs

    from devicekit.face.crop import CropBox, crop_image, to_image

    r = render(converted["heatmap2s", "tflite-int8"], "android", tmp_path / "a")
    f = r.facts
    run = compile_cli(r, tmp_path)
    img, face = _image()
    box = _boxes(face)[0]
    x = np.array(run("preprocess", *write_inputs(tmp_path, "", img, [box])).split(), np.int8)
    it = Interpreter(model_path=str(r.out_dir / r.model_file))
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x.reshape(1, f.height, f.width, f.channels))
    it.invoke()
    raw = it.get_tensor(it.get_output_details()[0]["index"]).ravel()
    (tmp_path / "dec.txt").write_text(" ".join(map(repr, box)) + " " + " ".join(map(repr, raw.tolist())) + "\n")
    got = np.array(run("decode", str(tmp_path / "dec.txt")).split(), np.float64)
    ref = to_image(raw.reshape(-1, 2), CropBox(*box[:3]), f.width).ravel()
    np.testing.assert_allclose(got, ref, atol=2e-3)
    # and the Kotlin input is the Python pipeline's input (crop_image + normalise + quantise) to within the resampling
    py = crop_image(img[..., ::-1].copy(), CropBox(*box[:3]), f.width).astype(np.float64)
    q = np.clip(np.floor((py - 127.5) / 128.0 / f.input_scale + 0.5) + f.input_zero_point, -128, 127)
    assert np.abs(x.reshape(q.shape).astype(int) - q).mean() < 2.0
