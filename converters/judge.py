"""Every artifact judged against the reference model, in the runtime a phone uses, by what each head is.

The gate's limits per precision (documented defaults, overridable with
``--gate KEY=VALUE`` or ``[convert.gate]`` in devicekit.toml):

| key | default | applies to |
| --- | --- | --- |
| ``fp32.rel_l2`` | 1e-4 | every head of an fp32 artifact |
| ``fp16.rel_l2`` | 1e-2 | every head of an fp16 artifact |
| ``int8.landmarks_mean_px`` | 0.5 | landmark heads of int8 / w8a8 artifacts, pixels of the input grid |
| ``int8.top1`` | 0.98 | classifier heads: share of images whose top class agrees (a flip between classes the reference scores within 5 % of its spread counts as agreement: ``compare.TOP1_TIE``) |
| ``int8.cosine`` | 0.99 | classifier heads: minimum cosine similarity over images |
| ``int8.probability_abs`` | 0.03 | softmax heads ([1, K], K < 100, values summing to 1): largest probability difference |
| ``int8.rel_l2`` | 0.05 | any other head of an int8 artifact |

Reference outputs are computed once per input set and loaded model.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from devicekit.errors import UsageError
from devicekit.runtime import Agreement, Limits, compare, head_kinds, match_outputs

DEFAULT_LIMITS = {
    "fp32": Limits(rel_l2=1e-4),
    "fp16": Limits(rel_l2=1e-2),
    "int8": Limits(rel_l2=0.05, landmarks_mean_px=0.5, top1=0.98, cosine=0.99, probability_abs=0.03),
}
PRECISION_CLASS = {"fp32": "fp32", "fp16": "fp16", "int8": "int8", "w8a8": "int8"}
MIN_INT8_SHARE = 0.9  # tflite-int8 fails when fewer MACs than this run in integer ops


@dataclass(frozen=True)
class GateConfig:
    enabled: bool = True
    overrides: tuple[tuple[str, float], ...] = ()  # ("int8.rel_l2", 0.1), ...
    min_int8_share: float = MIN_INT8_SHARE

    def __post_init__(self):
        for key, value in self.overrides:
            cls, _, metric = key.partition(".")
            if cls not in DEFAULT_LIMITS or metric not in Limits.__dataclass_fields__:
                known = ", ".join(f"{c}.{m}" for c, lim in DEFAULT_LIMITS.items() for m, v in vars(lim).items() if v is not None)
                raise UsageError(f"unknown gate limit {key!r} (known: {known})")
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not np.isfinite(value) or value < 0:
                raise UsageError(f"gate limit {key} must be a non-negative number, got {value!r}")
        if not 0.0 <= self.min_int8_share <= 1.0:
            raise UsageError(f"--min-int8-share must be between 0 and 1, got {self.min_int8_share}")

    @classmethod
    def parse(cls, items: list[str] | dict | None, enabled: bool = True, min_int8_share: float | None = None) -> "GateConfig":
        """``["int8.rel_l2=0.1", ...]`` (flags) or ``{"int8.rel_l2": 0.1}`` / ``{"int8": {"rel_l2": 0.1}}`` (TOML)."""
        pairs: list[tuple[str, float]] = []
        if isinstance(items, dict):
            for k, v in items.items():
                if isinstance(v, dict):
                    pairs += [(f"{k}.{m}", x) for m, x in v.items()]
                else:
                    pairs.append((k, v))
        for item in items if isinstance(items, list) else []:
            key, sep, val = item.partition("=")
            try:
                pairs.append((key.strip(), float(val)))
            except ValueError:
                raise UsageError(f"--gate takes KEY=NUMBER (e.g. int8.rel_l2=0.1), got {item!r}") from None
            if not sep:
                raise UsageError(f"--gate takes KEY=NUMBER (e.g. int8.rel_l2=0.1), got {item!r}")
        return cls(enabled, tuple(pairs), MIN_INT8_SHARE if min_int8_share is None else min_int8_share)

    def limits(self, precision: str) -> Limits:
        cls = PRECISION_CLASS.get(precision, precision)
        lim = DEFAULT_LIMITS[cls]
        for key, value in self.overrides:
            c, _, metric = key.partition(".")
            if c == cls:
                lim = replace(lim, **{metric: float(value)})
        return lim


def reference_outputs(model, inputs: np.ndarray, key: str) -> list[list[np.ndarray]]:
    """The original model's outputs on each input (batch 1), computed once per ``key`` and loaded model."""
    cache = model.cache.setdefault("reference_outputs", {})
    if key not in cache or len(cache[key]) != len(inputs):
        cache[key] = [model.run_reference(x[None]) for x in inputs]
    return cache[key]


@dataclass
class InputSet:
    """Inputs the artifact is judged on: the calibration images, or held-out ones."""

    key: str  # "calibration" | "holdout" | ...
    inputs: np.ndarray  # [N, C, H, W] normalised
    what: str  # for people: "64 calibration images (real faces)"


def judge(model, runner, inputs: InputSet, limits: Limits, reference: list[list[np.ndarray]] | None = None) -> Agreement:
    """``runner`` (anything with ``run(x)``) against the reference model (or ``reference`` outputs) on ``inputs``."""
    ref = reference if reference is not None else reference_outputs(model, inputs.inputs, inputs.key)
    got = [match_outputs(runner.run(x[None]), r) for x, r in zip(inputs.inputs, ref)]
    kinds = head_kinds(ref[0], model.info.get("landmarks"), model.info.get("task"))
    return compare(ref, got, kinds, limits, on=inputs.what)


@dataclass
class Verdict:
    """What the gate found for one artifact: agreements per input set, and the failures."""

    agreements: dict[str, Agreement] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    not_run: str | None = None  # why the artifact could not be run here (CoreML op the interpreter lacks, ...)

    @property
    def passed(self) -> bool:
        return not self.failures and self.not_run is None

    def to_json(self) -> dict:
        return {
            "passed": self.passed,
            "failures": self.failures,
            "notes": self.notes,
            "not_run": self.not_run,
            **{k: a.to_json() for k, a in self.agreements.items()},
        }
