"""How far a converted model is from its reference, per output head, judged by what the head is.

One comparison for convert's gate, verify and the benchmarks:

- ``landmarks``: points in model-input pixels (``[1, L, 2|3]`` or a flat
  ``[1, 2L]``): mean / p95 / max distance in pixels (x, y).
- ``classifier``: class scores ``[1, K]`` (K >= 100, or the model says it
  classifies): top-1 and top-5 agreement and cosine similarity (top-1
  counts a flip between classes the reference scores as tied, see
  ``TOP1_TIE``, as agreement, and reports it as ``top1_ties``).
- ``probabilities``: a small softmax head ``[1, K]`` (values in [0, 1]
  summing to 1: a face / no-face score): the largest absolute difference of
  a probability.
- ``tensor``: anything else: relative L2 over all images and max abs error.

Relative L2 is pooled over the images: sqrt(sum |c - r|^2 / sum |r|^2).
Every head also reports rel_l2 and max_abs, whatever its kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError

CLASSIFIER_MIN_CLASSES = 100
# A top-1 "disagreement" where the reference's own score for the converted model's pick is within this fraction of
# the reference's score spread (standard deviation over the classes) of its top score is a tie the reference does
# not decide, not an error of the conversion: it counts as agreement and is reported as ``top1_ties``. 5 % of the
# spread is the per-score noise the int8 gate accepts on any other head (rel-L2 <= 0.05). Measured on the
# random-init tv_regnet_y_400mf (benchmarks/coverage.md): its reference's top-2 margin is 1-2 % of the spread on the
# closest tenth of the images and 3-5 % on the median one; its int8 flips sat at 0.3-1.5 %, at cosine 0.9999.
# A trained classifier's top class usually stands well clear of the rest (not measured here: the corpus is
# random-init), so its flips still count.
TOP1_TIE = 0.05


def match_outputs(got: list[np.ndarray], ref: list[np.ndarray]) -> list[np.ndarray]:
    """Reorder/reshape converted outputs to match the reference's by shape (converters may reorder them)."""
    out, used = [], set()
    for r in ref:
        for i, t in enumerate(got):
            if i in used:
                continue
            if t.shape == r.shape:
                out.append(t)
                used.add(i)
                break
            if t.size == r.size and t.ndim == 4 and r.ndim == 4 and t.transpose(0, 3, 1, 2).shape == r.shape:
                out.append(t.transpose(0, 3, 1, 2))
                used.add(i)
                break
        else:
            raise InputError(f"no converted output matches the reference output of shape {list(r.shape)}")
    return out


def head_kinds(ref: list[np.ndarray], landmarks: int | None = None, task: str | None = None) -> list[str]:
    """The kind of each reference output (one batch-1 example)."""
    kinds = []
    for r in ref:
        shape = tuple(r.shape)
        n = int(np.prod(shape[1:])) if len(shape) > 1 else int(r.size)
        if landmarks and (shape[-2:] in ((landmarks, 2), (landmarks, 3)) or (len(shape) == 2 and n in (2 * landmarks, 3 * landmarks))):
            kinds.append("landmarks")
        elif len(shape) == 2 and (n >= CLASSIFIER_MIN_CLASSES or task == "classification") and n > 1:
            kinds.append("classifier")
        elif len(shape) == 2 and n > 1 and np.all(r >= -1e-6) and np.all(r <= 1 + 1e-6) and abs(float(np.sum(r)) - 1) < 1e-3:
            kinds.append("probabilities")
        else:
            kinds.append("tensor")
    return kinds


@dataclass(frozen=True)
class Limits:
    """What a head must meet. ``None`` means not gated."""

    rel_l2: float | None = None  # tensor heads (and every head of a float target)
    landmarks_mean_px: float | None = None
    top1: float | None = None  # fraction of images whose top class agrees
    cosine: float | None = None  # minimum over images
    probability_abs: float | None = None  # largest |difference| of a softmax probability

    def for_kind(self, kind: str) -> dict[str, tuple[str, float]]:
        """metric -> (">=" | "<=", limit) for a head of ``kind``."""
        out: dict[str, tuple[str, float]] = {}
        if kind == "landmarks" and self.landmarks_mean_px is not None:
            out["mean_px"] = ("<=", self.landmarks_mean_px)
        elif kind == "classifier" and (self.top1 is not None or self.cosine is not None):
            if self.top1 is not None:
                out["top1"] = (">=", self.top1)
            if self.cosine is not None:
                out["cosine_min"] = (">=", self.cosine)
        elif kind == "probabilities" and self.probability_abs is not None:
            out["max_abs"] = ("<=", self.probability_abs)
        elif self.rel_l2 is not None:
            out["rel_l2"] = ("<=", self.rel_l2)
        return out


@dataclass
class Head:
    name: str
    kind: str
    metrics: dict
    limits: dict = field(default_factory=dict)  # metric -> [op, limit]
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def score(self) -> float:
        """How close to its limits the head is: the worst metric / limit ratio (<= 1 passes)."""
        worst = 0.0
        for metric, (op, limit) in self.limits.items():
            v = self.metrics[metric]
            if op == "<=":
                worst = max(worst, v / limit if limit else (0.0 if v == 0 else float("inf")))
            else:  # a share or similarity that must stay above the limit: distance to 1 against the allowance
                allowance = 1.0 - limit
                worst = max(worst, (1.0 - v) / allowance if allowance > 0 else (0.0 if v >= limit else float("inf")))
        return worst

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "passed": self.passed,
            **self.metrics,
            "limits": {k: list(v) for k, v in self.limits.items()},
            "failures": self.failures,
        }


@dataclass
class Agreement:
    heads: list[Head]
    images: int
    on: str  # what the inputs were

    @property
    def passed(self) -> bool:
        return all(h.passed for h in self.heads)

    def score(self) -> float:
        return max((h.score() for h in self.heads), default=0.0)

    def failures(self) -> list[str]:
        return [f"{h.name}: {f}" for h in self.heads for f in h.failures]

    def summary(self) -> str:
        """One line: the headline number of each head."""
        parts = []
        for h in self.heads:
            m = h.metrics
            if h.kind == "landmarks":
                parts.append(f"{h.name} {m['mean_px']:.3g}/{m['max_px']:.3g} px")
            elif h.kind == "classifier":
                ties = f" ({m['top1_ties']} tie{'s' * (m['top1_ties'] != 1)})" if m.get("top1_ties") else ""
                parts.append(f"{h.name} top-1 {m['top1']:.0%}{ties} cos {m['cosine_min']:.4f}")
            elif h.kind == "probabilities":
                parts.append(f"{h.name} max |dp| {m['max_abs']:.3g}")
            else:
                parts.append(f"{h.name} rel {m['rel_l2']:.2g}")
        return ", ".join(parts)

    def to_json(self) -> dict:
        return {
            "images": self.images,
            "on": self.on,
            "passed": self.passed,
            "score": round(self.score(), 4),
            "heads": [h.to_json() for h in self.heads],
        }


def _metrics(kind: str, r: np.ndarray, c: np.ndarray) -> dict:
    """``r`` and ``c`` are [N, ...] stacks of one head over the images."""
    diff = (c - r).astype(np.float64)
    den = float(np.sum(np.square(r, dtype=np.float64)))
    num = float(np.sum(np.square(diff)))
    m = {
        "rel_l2": float(np.sqrt(num / den)) if den else (0.0 if num == 0 else float("inf")),
        "max_abs": float(np.max(np.abs(diff))) if diff.size else 0.0,
    }
    n = r.shape[0]
    if kind == "landmarks":
        dim = 3 if r.shape[-1] == 3 or (r.ndim == 2 and r.shape[1] % 3 == 0 and r.shape[1] % 2) else 2
        a, b = r.reshape(n, -1, dim)[..., :2], c.reshape(n, -1, dim)[..., :2]
        d = np.linalg.norm(a - b, axis=-1).ravel()
        m.update({"mean_px": float(d.mean()), "p95_px": float(np.percentile(d, 95)), "max_px": float(d.max())})
    elif kind == "classifier":
        a, b = r.reshape(n, -1).astype(np.float64), c.reshape(n, -1).astype(np.float64)
        top_r, top_c = a.argmax(1), b.argmax(1)
        k = min(5, a.shape[1])
        top5_r = np.argsort(-a, axis=1)[:, :k]
        top5_c = np.argsort(-b, axis=1)[:, :k]
        cos = np.sum(a * b, 1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)
        rows = np.arange(n)
        tie = (top_r != top_c) & (a[rows, top_r] - a[rows, top_c] <= TOP1_TIE * a.std(1))
        m.update(
            {
                "top1": float(np.mean((top_r == top_c) | tie)),
                "top1_strict": float(np.mean(top_r == top_c)),
                "top1_ties": int(tie.sum()),
                "top5": float(np.mean([len(set(x) & set(y)) / k for x, y in zip(top5_r, top5_c)])),
                "top1_in_top5": float(np.mean([t in s for t, s in zip(top_r, top5_c)])),
                "cosine_min": float(cos.min()),
                "cosine_mean": float(cos.mean()),
            }
        )
    return m


def compare(
    ref: list[list[np.ndarray]], got: list[list[np.ndarray]], kinds: list[str], limits: Limits, names: list[str] | None = None, on: str = ""
) -> Agreement:
    """``ref[i]`` / ``got[i]``: the outputs for image i (already matched with ``match_outputs``)."""
    if not ref:
        raise InputError("nothing to compare: no inputs")
    heads = []
    for j, kind in enumerate(kinds):
        r = np.stack([np.asarray(o[j], np.float32).reshape(np.shape(o[j])) for o in ref])
        c = np.stack([np.asarray(o[j], np.float32) for o in got])
        metrics = _metrics(kind, r, c)
        name = names[j] if names and j < len(names) and names[j] else f"output{j}"
        head = Head(name, kind, metrics, limits.for_kind(kind))
        for metric, (op, limit) in head.limits.items():
            v = metrics[metric]
            bad = not (v <= limit) if op == "<=" else not (v >= limit)
            if bad:
                head.failures.append(f"{metric} {v:.4g} (limit {op} {limit:g})")
        heads.append(head)
    return Agreement(heads, len(ref), on)
