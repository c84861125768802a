"""Which ops of a MIL program are learned layers, and which come after the last of them (the float tail).

Shared by the CoreML conversion (converters/coreml.py: the fp16 precision pass keeps the tail fp32) and its
W8A8 quantisation (converters/coreml_quant.py: the regions the float search works on).
"""

from __future__ import annotations

import numpy as np

WEIGHTED_MIL = {"conv", "conv_transpose", "linear", "matmul", "einsum"}


def is_learned(op) -> bool:
    """A weighted op (conv, linear, matmul) that is a learned layer, not a fixed box sum.

    A convolution whose kernel is a constant with one value throughout is a
    (scaled) box sum, not a learned layer: ``devicekit.zoo.layers.ramps``
    makes the soft-argmax and RoI ramps that way on purpose (onnx2tf
    re-lays out constant ramps wrongly); coremltools folds their ``/ C`` and
    ``- 1`` into the kernel and bias. Counting them as learned put the whole
    soft-argmax and RoI crop in front of "a learned layer", so only the last
    17 decode ops stayed fp32 and exp / RoI sampling ran in fp16.
    """
    if op.op_type not in WEIGHTED_MIL:
        return False
    if op.op_type not in ("conv", "conv_transpose"):
        return True
    w = getattr(op, "weight", None)
    val = None if w is None else w.val
    if val is None:
        return True
    val = np.asarray(val)
    return val.size == 0 or bool(np.any(val != val.flat[0]))


def reaches_learned(op) -> bool:
    """Whether a learned layer can be reached from ``op``'s outputs.

    A fresh walk per op: the precision pass rewrites the graph while it asks, so nothing is cached.
    """
    seen, stack = set(), [op]
    while stack:
        for out in stack.pop().outputs:
            for c in out.child_ops:
                if is_learned(c):
                    return True
                if id(c) not in seen:
                    seen.add(id(c))
                    stack.append(c)
    return False
