"""devicekit.runtime.compare: every head judged by what it is (pure logic, no converter)."""

from __future__ import annotations

import numpy as np

from devicekit.converters.judge import GateConfig
from devicekit.runtime import compare, head_kinds
from devicekit.runtime.compare import Limits


def test_head_kinds():
    ref = [
        np.zeros((1, 5, 2), np.float32),
        np.full((1, 1000), 0.1, np.float32),
        np.array([[0.9, 0.1]], np.float32),
        np.array([[0.3, -1.2, 4.0, 0.5]], np.float32),
        np.array([[0.2, 0.3]], np.float32),
    ]
    assert head_kinds(ref, landmarks=5) == ["landmarks", "classifier", "probabilities", "tensor", "tensor"]


def test_a_probability_head_is_gated_on_its_largest_difference():
    """MTCNN's face score: pooled relative L2 hid a 0.05 miss on one uncertain face among confident ones."""
    limits = GateConfig().limits("int8")
    ref = [[np.array([[0.999, 0.001]], np.float32)] for _ in range(15)] + [[np.array([[0.68, 0.32]], np.float32)]]
    got = [[np.array([[0.998, 0.002]], np.float32)] for _ in range(15)] + [[np.array([[0.73, 0.27]], np.float32)]]
    kinds = head_kinds(ref[0])
    assert kinds == ["probabilities"]
    a = compare(ref, got, kinds, limits, ["prob"])
    assert not a.passed and "max_abs" in a.failures()[0], a.failures()
    # the same numbers as a plain tensor head pass the pooled relative L2 (what the gate did before)
    assert compare(ref, got, ["tensor"], limits, ["prob"]).passed
    # within 0.03 everywhere passes
    near = [[np.array([[r[0][0, 0] - 0.02, r[0][0, 1] + 0.02]], np.float32)] for r in ref]
    assert compare(ref, near, kinds, limits, ["prob"]).passed
    # float targets judge it by relative L2 like any other head
    assert set(GateConfig().limits("fp32").for_kind("probabilities")) == {"rel_l2"}


def test_probability_limit_is_a_gate_key():
    g = GateConfig.parse(["int8.probability_abs=0.05"])
    assert g.limits("int8").probability_abs == 0.05 and g.limits("w8a8").probability_abs == 0.05


def test_top1_counts_a_flip_between_tied_classes_as_agreement_and_reports_it():
    rng = np.random.default_rng(0)
    ref = rng.normal(0, 1.0, (4, 1000)).astype(np.float32)
    ref[:, 7], ref[:, 9] = 5.0, 5.0 - 0.005  # a tie at 0.5 % of the spread on every image
    got = ref.copy()
    got[0, 9] += 0.02  # image 0 flips between the tied classes
    got[1, 3] = 9.0  # image 1 picks a class the reference scores far below its top: a real disagreement
    a = compare([[r[None]] for r in ref], [[g[None]] for g in got], ["classifier"], Limits(top1=0.98))
    m = a.heads[0].metrics
    assert m["top1_strict"] == 0.5 and m["top1_ties"] == 1 and m["top1"] == 0.75
    assert not a.passed and "(1 tie)" in a.summary()
