"""Bad input: every broken file ends in a one-line InputError, never a hang, a crash or a traceback."""

from __future__ import annotations

import json
import random
import shutil
import signal
import struct
import time
from contextlib import contextmanager

import pytest
from check_models import cli, keras_tflite, mediapipe, small_onnx

from devicekit.check import run_checks
from devicekit.errors import InputError, UsageError
from devicekit.modelfile import read_model


@contextmanager
def time_limit(seconds: float):
    def _raise(signum, frame):
        raise TimeoutError(f"no result within {seconds} s")

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def expect_input_error(path, match: str | None = None) -> str:
    with time_limit(10), pytest.raises(InputError) as e:
        run_checks(path)
    msg = e.value.one_line()
    assert "\n" not in msg and len(msg) < 400
    if match:
        assert match in msg, msg
    return msg


def test_missing_and_empty(tmp_path):
    expect_input_error(tmp_path / "nope.tflite", "not found")
    (tmp_path / "empty.tflite").write_bytes(b"")
    expect_input_error(tmp_path / "empty.tflite", "empty file")
    (tmp_path / "empty.onnx").write_bytes(b"")
    expect_input_error(tmp_path / "empty.onnx", "empty file")


def test_wrong_extension_and_wrong_content(tmp_path):
    src = keras_tflite("fp32")
    shutil.copy(src, tmp_path / "model.bin")
    assert "rename it" in expect_input_error(tmp_path / "model.bin", "unsupported model file type")
    (tmp_path / "text.tflite").write_text("hello, I am not a model at all\n")
    expect_input_error(tmp_path / "text.tflite", "not a TFLite model")
    shutil.copy(small_onnx(), tmp_path / "onnx.tflite")
    expect_input_error(tmp_path / "onnx.tflite", "not a TFLite model")
    shutil.copy(src, tmp_path / "tflite.onnx")
    expect_input_error(tmp_path / "tflite.onnx", "ONNX")
    (tmp_path / "dir.tflite").mkdir()
    expect_input_error(tmp_path / "dir.tflite", "directory")


def test_truncated_flatbuffer(tmp_path):
    data = keras_tflite("fp32").read_bytes()
    for cut in (7, 8, 64, len(data) // 3, len(data) - 5):
        p = tmp_path / f"cut{cut}.tflite"
        p.write_bytes(data[:cut])
        expect_input_error(p)


def test_offsets_outside_the_file(tmp_path):
    data = bytearray(keras_tflite("fp32").read_bytes())
    root = struct.unpack_from("<I", data, 0)[0]
    bad = bytearray(data)
    struct.pack_into("<I", bad, 0, len(data) + 1000)  # root table past the end
    (tmp_path / "root.tflite").write_bytes(bad)
    assert "outside" in expect_input_error(tmp_path / "root.tflite")
    bad = bytearray(data)
    struct.pack_into("<i", bad, root, -(1 << 30))  # vtable offset far outside
    (tmp_path / "vtable.tflite").write_bytes(bad)
    expect_input_error(tmp_path / "vtable.tflite", "outside")
    # a vector whose length claims more elements than the file could hold
    from devicekit.modelfile._fb import Buf

    model = Buf(bytes(data)).root()
    p = model._field(2)  # subgraphs vector
    vec = p + struct.unpack_from("<I", data, p)[0]
    bad = bytearray(data)
    struct.pack_into("<I", bad, vec, 0x7FFFFFFF)
    (tmp_path / "vector.tflite").write_bytes(bad)
    expect_input_error(tmp_path / "vector.tflite", "cannot fit")


def test_mlpackage_missing_spec(tmp_path):
    pkg = tmp_path / "broken.mlpackage"
    pkg.mkdir()
    expect_input_error(pkg, "Manifest.json missing")
    (pkg / "Manifest.json").write_text(json.dumps({
        "fileFormatVersion": "1.0.0", "rootModelIdentifier": "A",
        "itemInfoEntries": {"A": {"path": "com.apple.CoreML/model.mlmodel", "name": "model.mlmodel"}}}))
    expect_input_error(pkg, "is missing")
    (pkg / "Manifest.json").write_text("{not json")
    expect_input_error(pkg, "unreadable Manifest.json")
    (pkg / "Manifest.json").write_text(json.dumps({"rootModelIdentifier": "A", "itemInfoEntries": {
        "A": {"path": "../../../etc/passwd"}}}))
    expect_input_error(pkg, "outside the package")
    (pkg / "Manifest.json").write_text(json.dumps({"rootModelIdentifier": "A", "itemInfoEntries": {
        "A": {"path": "com.apple.CoreML/model.mlmodel"}}}))
    spec = pkg / "Data" / "com.apple.CoreML" / "model.mlmodel"
    spec.parent.mkdir(parents=True)
    spec.write_bytes(b"\xff\xff\xff\xff garbage")
    expect_input_error(pkg, "corrupt CoreML spec")


def test_cli_bad_input_is_one_line(tmp_path):
    (tmp_path / "empty.tflite").write_bytes(b"")
    r = cli("check", str(tmp_path / "empty.tflite"))
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().count("\n") == 0 and "error:" in r.stderr and "Traceback" not in r.stderr
    r = cli("check", str(keras_tflite("fp32")), "--budget", "nosuchbudget")
    assert r.returncode == 2 and "unknown budget" in r.stderr
    r = cli("check", str(keras_tflite("fp32")), "--runtime", "coreml-ane")
    assert r.returncode == 2 and "does not apply" in r.stderr


def test_usage_errors():
    with pytest.raises(UsageError):
        run_checks(keras_tflite("fp32"), budgets=["x=lots"])
    with pytest.raises(UsageError):
        run_checks(keras_tflite("fp32"), runtimes=["gpux"])
    with pytest.raises(UsageError):
        run_checks(keras_tflite("fp32"), require="fp8")


def _mutations(data: bytes, spans: list[tuple[int, int]], rng: random.Random, n: int):
    """Byte flips anywhere, random 32-bit words in the flatbuffer's structure (outside weight data), truncation."""
    structure = [i for i in range(0, len(data) - 4, 4) if not any(a <= i < b for a, b in spans)]
    specials = [0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 0x80000000, len(data), len(data) - 2]
    for k in range(n):
        b = bytearray(data)
        kind = k % 4
        if kind == 0:
            for _ in range(rng.randint(1, 8)):
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        elif kind in (1, 2):
            for _ in range(rng.randint(1, 3)):
                pos = rng.choice(structure)
                val = rng.choice(specials) if kind == 1 else rng.getrandbits(32)
                struct.pack_into("<I", b, pos, val)
        else:
            b = b[: rng.randrange(8, len(b))]
        yield bytes(b)


@pytest.mark.parametrize("source", ["keras-int8", "face_detection_short_range.tflite"])
def test_fuzz_mutated_models(tmp_path, source):
    """Fixed seed, a few hundred mutated real models: each ends in a report or a clean InputError in time."""
    path = keras_tflite("int8") if source == "keras-int8" else mediapipe(source)
    data = path.read_bytes()
    facts = read_model(path)
    spans = []
    from devicekit.modelfile._fb import Buf

    model = Buf(data).root()
    for b in model.tables(4, "Buffer"):
        s, n = b.bytes_span(0)
        if n:
            spans.append((s, s + n))
    rng = random.Random(4)
    n_cases = 200 if source == "keras-int8" else 100
    outcomes = {"report": 0, "input_error": 0}
    slowest = 0.0
    target = tmp_path / "fuzz.tflite"
    for i, mutated in enumerate(_mutations(data, spans, rng, n_cases)):
        target.write_bytes(mutated)
        t0 = time.perf_counter()
        try:
            with time_limit(20):
                report = run_checks(target)
            json.dumps(report.to_json())
            outcomes["report"] += 1
        except InputError as exc:
            assert "\n" not in exc.one_line()
            outcomes["input_error"] += 1
        slowest = max(slowest, time.perf_counter() - t0)
    assert sum(outcomes.values()) == n_cases
    assert outcomes["input_error"] > n_cases // 10, outcomes  # the mutations do break things
    assert len(facts.ops) > 0
