"""Hostile command lines, configs and file names (issue 17): no code run, no markup eaten, no unbounded run.

Each test runs the real CLI in a subprocess, as a user (or a cloned repository's devicekit.toml) would.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from check_models import mediapipe
from cli_run import cli, one_line_error


@pytest.fixture
def state_dict(tmp_path) -> Path:
    import torch

    p = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(1)}, p)
    return p


def test_config_file_cannot_run_code_or_widen_trust(tmp_path, state_dict):
    """`[model] arch = "os:system"` ran a shell command; `trust_checkpoint = true` unpickled without a flag."""
    marker = tmp_path / "PWNED"
    (tmp_path / "devicekit.toml").write_text(
        f'[model]\narch = "os:system"\narch_args = {{command = "touch {marker}"}}\n')
    r = cli("convert", state_dict, "--input-shape", "1,3,8,8", "--no-verify", "--no-check", cwd=tmp_path)
    one_line_error(r, 2, "model.arch cannot be set in a config file", "--arch module:Class")
    assert not marker.exists()
    (tmp_path / "devicekit.toml").write_text("[model]\ntrust_checkpoint = true\n")
    r = cli("convert", state_dict, "--input-shape", "1,3,8,8", cwd=tmp_path)
    one_line_error(r, 2, "model.trust_checkpoint cannot be set", "--trust-checkpoint")
    # verify's default reference from the config: a zoo name is fine, a file must be named on the command line
    (tmp_path / "devicekit.toml").write_text(f'[model]\nsource = "{state_dict}"\n')
    r = cli("verify", "x.tflite", "--images", tmp_path, cwd=tmp_path)
    one_line_error(r, 2, "is a file", "--reference")


@pytest.mark.parametrize("arch, words", [
    ("os:system", ["--arch os:system is a builtin_function_or_method"]),
    ("builtins:eval", ["is a builtin_function_or_method"]),
    ("torch.nn.functional:relu", ["is a function"]),
    ("torch:Tensor", ["not a torch.nn.Module"]),
    ("os:system;id", ["--arch must be package.module:Class"]),
])
def test_arch_is_only_an_nn_module_class(tmp_path, state_dict, arch, words):
    marker = tmp_path / "ran"
    r = cli("convert", state_dict, "--arch", arch, "--arch-args", f'{{"command": "touch {marker}"}}',
            "--input-shape", "1,3,8,8", cwd=tmp_path)
    one_line_error(r, 2, *words)
    assert not marker.exists()


def test_text_file_as_checkpoint_is_bad_input_not_internal_error(tmp_path):
    """`convert text.pt --arch torch.nn:Identity` ended in `internal error: IndexError: pop from empty list`."""
    (tmp_path / "text.pt").write_text("hello\n")
    r = cli("convert", "text.pt", "--arch", "torch.nn:Identity", "--input-shape", "1,3,8,8", cwd=tmp_path)
    msg = one_line_error(r, 2, "text.pt: not a PyTorch checkpoint")
    assert "internal error" not in msg


def test_next_hints_are_shell_quoted(tmp_path):
    """`next: devicekit verify a;touch X;.tflite ...`: pasting the hint ran `touch X`."""
    name = "a;touch X;.tflite"
    (tmp_path / name).write_bytes(mediapipe("face_detection_short_range.tflite").read_bytes())
    r = cli("check", name, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stderr.splitlines() if ln.startswith("next:"))
    for hint in line[len("next:"):].split("  |  "):
        argv = shlex.split(hint)
        assert argv[:3] in (["devicekit", "verify", name], ["devicekit", "bench", name]), argv


@pytest.mark.parametrize("name", ["a[/]b.tflite", "[red]x[/red].tflite", "[bold]"])
def test_file_names_are_printed_not_read_as_markup(tmp_path, name):
    """`devicekit check 'a[/]b.tflite'` was a rich MarkupError traceback; `[red]x[/red]` printed as `x`."""
    r = cli("check", name, cwd=tmp_path)
    one_line_error(r, 2, f"model file not found: {name}")


def test_toml_messages_keep_section_names(tmp_path):
    (tmp_path / "devicekit.toml").write_text("[inptu]\n")
    r = cli("bench", "x.tflite", "--device", "host", cwd=tmp_path)
    one_line_error(r, 2, "unknown section [inptu]")


def test_bounds_and_usage_errors(tmp_path):
    model = mediapipe("face_detection_short_range.tflite")
    r = cli("bench", model, "--device", "host", "--frames", "99999999999999999999", cwd=tmp_path, timeout=60)
    one_line_error(r, 2, "--frames must be between 1 and 1,000,000")
    assert not (tmp_path / "runs").exists()
    r = cli("check", model, "--layers", "-3", cwd=tmp_path)
    assert r.returncode == 2 and "top -3" not in r.stdout
    r = cli("check", model, "--runtime", "litert>=x.y", cwd=tmp_path)
    one_line_error(r, 2, "the version must be numbers")
    (tmp_path / "devicekit.toml").write_text("[bench]\nframes = true\n")
    r = cli("bench", model, "--device", "host", cwd=tmp_path, timeout=60)
    one_line_error(r, 2, "bench.frames has the wrong type (bool, expected int)")
    (tmp_path / "devicekit.toml").write_text("[bench]\nthreads = 100000\n")
    r = cli("bench", model, "--device", "host", cwd=tmp_path, timeout=60)
    one_line_error(r, 2, "bench.threads in", "between 1 and 256")
    r = cli("bench", "--help", cwd=tmp_path)
    assert "(default 100" in r.stdout and "(default 10)" in r.stdout and "(default 4" in r.stdout


def test_calibration_never_uses_a_partly_decoded_image(tmp_path):
    """(Already fixed on main, kept as a regression test.) Six unreadable files and one truncated JPEG were
    "skipped 6" and a calibration on the one damaged image; now the truncated file is skipped too (OpenCV decodes
    it to a half-grey picture without an error) and too few good images is an error naming --calib-min."""
    import cv2
    import numpy as np

    from devicekit.config import InputSpec
    from devicekit.converters.calibration import load_calibration
    from devicekit.errors import InputError

    rng = np.random.default_rng(0)
    ok, jpg = cv2.imencode(".jpg", rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    for i in range(6):
        (tmp_path / f"bad{i}.jpg").write_bytes(rng.bytes(500))
    (tmp_path / "cut.jpg").write_bytes(jpg.tobytes()[: len(jpg) // 2])
    with pytest.raises(InputError, match="could be read|only 0 good") as e:
        load_calibration(InputSpec(), tmp_path, 4, face_crop=False)
    for i in range(8):
        (tmp_path / f"good{i}.jpg").write_bytes(jpg.tobytes())
    cal = load_calibration(InputSpec(), tmp_path, 4, face_crop=False)
    assert not any("cut.jpg" in f for f in cal.files) and any("cut.jpg" in s for s in cal.skipped)
    assert e.value.message
