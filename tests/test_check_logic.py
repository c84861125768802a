"""Pure-logic checks on small in-memory graphs (no files): int8 islands, budgets, runtimes, gates."""

from __future__ import annotations

import pytest

from devicekit.check import check_facts
from devicekit.check.int8 import int8_facts
from devicekit.check.ops import parse_runtime
from devicekit.check.result import CheckResult
from devicekit.check.rules import budgets, parse_bytes
from devicekit.errors import UsageError
from devicekit.modelfile.facts import ModelFacts, Op, Tensor


def _q(i, shape, dtype="int8"):
    return Tensor(i, f"t{i}", shape, dtype, scale=(0.1,), zero_point=(0,)) if dtype == "int8" else Tensor(i, f"t{i}", shape, dtype)


def _island_model() -> ModelFacts:
    """int8 conv -> DEQUANTIZE -> float SOFTMAX -> QUANTIZE -> int8 conv -> DEQUANTIZE -> float output."""
    t = [
        _q(0, (1, 8, 8, 4)),
        Tensor(1, "w1", (4, 1, 1, 4), "int8", const=True, const_bytes=16, scale=(0.1,), zero_point=(0,)),
        _q(2, (1, 8, 8, 4)),
        _q(3, (1, 8, 8, 4), "float32"),
        _q(4, (1, 8, 8, 4), "float32"),
        _q(5, (1, 8, 8, 4)),
        Tensor(6, "w2", (4, 1, 1, 4), "int8", const=True, const_bytes=16, scale=(0.1,), zero_point=(0,)),
        _q(7, (1, 8, 8, 4)),
        _q(8, (1, 8, 8, 4), "float32"),
    ]
    ops = [
        Op(0, "CONV_2D", 3, (0, 1), (2,)),
        Op(1, "DEQUANTIZE", 2, (2,), (3,)),
        Op(2, "SOFTMAX", 1, (3,), (4,)),
        Op(3, "QUANTIZE", 1, (4,), (5,)),
        Op(4, "CONV_2D", 3, (5, 6), (7,)),
        Op(5, "DEQUANTIZE", 2, (7,), (8,)),
    ]
    return ModelFacts("q.tflite", "tflite", 1000, t, ops, (0,), (8,), blob=b"\0" * 1000)


def test_int8_islands_and_float_share():
    info = int8_facts(_island_model())
    assert info["quantized"] and info["float_op_count"] == 1
    assert info["float_ops"] == [{"op": 2, "type": "SOFTMAX"}]
    assert info["total_macs"] == 2 * 8 * 8 * 4 * 4 and info["float_macs"] == 0
    trips = [p for p in info["pairs"] if p["quantize"]]
    assert trips == [{"dequantize": 1, "quantize": [3], "float_ops": [2], "float_op_types": ["SOFTMAX"]}]
    assert [p for p in info["pairs"] if not p["quantize"]][0]["dequantize"] == 5
    rep = check_facts(_island_model(), require="int8")
    assert not rep.ok and rep.get("int8").status == "fail" and "1 DEQUANTIZE->float->QUANTIZE" in rep.get("int8").message


def test_budgets_and_sizes():
    assert budgets(None) == {"play-apk": 100_000_000}
    assert budgets(["play-base", "mine=1.5MiB"]) == {"play-base": 200_000_000, "mine": int(1.5 * 2**20)}
    assert parse_bytes("20MB") == 20_000_000 and parse_bytes("512") == 512
    with pytest.raises(UsageError) as e:
        budgets(["play-apkk"])
    assert "did you mean play-apk" in e.value.one_line()
    with pytest.raises(UsageError):
        parse_bytes("big")


def test_runtime_specs():
    assert parse_runtime("litert>=2.10") == ("litert", "2.10")
    assert parse_runtime("GPU") == ("gpu", None)
    with pytest.raises(UsageError):
        parse_runtime("gpu>=1.0")
    with pytest.raises(UsageError) as e:
        parse_runtime("xnnpak")
    assert "did you mean xnnpack" in e.value.one_line()


def test_result_status_is_validated():
    with pytest.raises(ValueError):
        CheckResult("x", "ok")
