"""Size what-ifs on real converted models: the extra-pool suggestion is checked by building and converting it.

A scaled-down seed-004 network (conv + pool stack, big FC on the flattened
map) is converted by TFLiteConverter; `check` says it fails a budget and
what one more 2x2 pool before the first FC would weigh; the variant with that
pool is converted too, and must weigh what `check` predicted and pass.
(The full-size basiccnn story runs in tests/test_check_seed004.py, slow.)
"""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest
from check_models import _TMP

from devicekit.check import run_checks


@functools.lru_cache(maxsize=None)
def fc_heavy(extra_pools: int, int8: bool = False):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.random.set_seed(0)
    inp = tf.keras.Input((48, 48, 1), batch_size=1)
    x = tf.keras.layers.Conv2D(16, 3, activation="relu")(inp)  # 46
    x = tf.keras.layers.MaxPool2D()(x)  # 23
    x = tf.keras.layers.Conv2D(32, 2, activation="relu")(x)  # 22
    for _ in range(extra_pools):
        x = tf.keras.layers.MaxPool2D()(x)
    x = tf.keras.layers.Flatten()(x)
    x = tf.keras.layers.Dense(300, activation="relu")(x)
    out = tf.keras.layers.Dense(136)(x)
    conv = tf.lite.TFLiteConverter.from_keras_model(tf.keras.Model(inp, out))
    if int8:
        rng = np.random.default_rng(0)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([rng.random((1, 48, 48, 1), np.float32)] for _ in range(4))
    path = _TMP / f"fc_heavy_{extra_pools}_{'int8' if int8 else 'fp32'}.tflite"
    path.write_bytes(conv.convert())
    return path


def test_extra_pool_suggestion_is_what_the_variant_weighs():
    base = fc_heavy(0)
    limit = 5_000_000  # the base holds 22*22*32*300 floats in its first FC: ~18.6 MB
    rep = run_checks(base, budgets={"app": limit})
    assert not rep.ok and rep.get("budget:app").status == "fail"
    size = rep.sections["size"]
    assert size["fc_heavy"] and size["first_fc"]["chw"] == (32, 22, 22)
    wi = {row["extra_pools"]: row for row in size["extra_pool_what_if"]}
    assert wi[1]["feature_map"] == [32, 11, 11]
    hint = rep.get("budget:app").hint
    assert "1 more 2x2 max-pool" in hint and "int8 weights" in hint
    variant = fc_heavy(1)
    actual = variant.stat().st_size
    assert abs(wi[1]["model_bytes"] - actual) / actual < 0.01, (wi[1]["model_bytes"], actual)
    assert run_checks(variant, budgets={"app": limit}).ok
    two = fc_heavy(2)
    assert abs(wi[2]["model_bytes"] - two.stat().st_size) / two.stat().st_size < 0.01


@pytest.mark.slow
def test_int8_what_if_matches_the_int8_conversion():
    fp32 = run_checks(fc_heavy(0)).sections["size"]
    actual = fc_heavy(0, int8=True).stat().st_size
    assert abs(fp32["what_if"]["int8"] - actual) / actual < 0.03, (fp32["what_if"]["int8"], actual)
    both = fp32["extra_pool_what_if"][0]["int8_model_bytes"]
    actual_both = fc_heavy(1, int8=True).stat().st_size
    assert abs(both - actual_both) / actual_both < 0.05, (both, actual_both)


def test_layer_breakdown_names_the_fc():
    size = run_checks(fc_heavy(0)).sections["size"]
    top = size["layers"][0]
    assert top["type"] == "FULLY_CONNECTED" and top["bytes"] == 22 * 22 * 32 * 300 * 4
    assert top["bytes"] / size["weight_bytes"] > 0.9
