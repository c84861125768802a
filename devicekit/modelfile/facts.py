"""Format-neutral facts about a model file: what every check reads.

The readers (tflite, onnx, mlpackage) fill these; the checks are pure
functions of them. Shapes are concrete where the file says so; ``-1`` marks
a dynamic dimension (treated as 1 for sizes and MACs, and said so).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DTYPE_BYTES = {
    "float32": 4,
    "float16": 2,
    "bfloat16": 2,
    "float64": 8,
    "int32": 4,
    "uint32": 4,
    "int64": 8,
    "uint64": 8,
    "int16": 2,
    "uint16": 2,
    "int8": 1,
    "uint8": 1,
    "bool": 1,
    "int4": 0.5,
    "int2": 0.25,
    "complex64": 8,
    "complex128": 16,
    "string": 0,
    "resource": 0,
    "variant": 0,
}
QUANT_INT = {"int8", "uint8", "int16", "int4", "int2"}


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    const: bool = False  # holds data in the file (weights, constants)
    const_bytes: int = 0  # bytes of that data in the file
    scale: tuple[float, ...] = ()  # quantization scales ([] = not quantized)
    zero_point: tuple[int, ...] = ()
    variable: bool = False

    @property
    def elements(self) -> int:
        return int(np.prod([max(d, 1) for d in self.shape], dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return int(np.ceil(self.elements * DTYPE_BYTES.get(self.dtype, 4)))

    @property
    def quantized(self) -> bool:
        return bool(self.scale) and self.dtype in QUANT_INT


@dataclass
class Op:
    index: int
    op: str  # builtin name (CONV_2D), ONNX op type (Conv), or MIL op (conv)
    version: int = 1
    inputs: tuple[int, ...] = ()  # tensor indices (-1 = optional input absent)
    outputs: tuple[int, ...] = ()
    kind: str = "builtin"  # builtin | custom | flex | onnx | mil
    custom_name: str | None = None
    subgraph: int = 0
    attrs: dict = field(default_factory=dict)


@dataclass
class ModelFacts:
    path: str
    format: str  # tflite | onnx | mlpackage
    file_bytes: int
    tensors: list[Tensor]
    ops: list[Op]  # main subgraph, execution order
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    other_ops: list[Op] = field(default_factory=list)  # ops in other subgraphs (control flow bodies)
    metadata: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    blob: bytes | None = None  # raw weights container, for what-if compression (tflite: the file)

    def tensor(self, i: int) -> Tensor | None:
        return self.tensors[i] if 0 <= i < len(self.tensors) else None

    @property
    def weight_bytes(self) -> int:
        return sum(t.const_bytes for t in self.tensors)

    def producers(self) -> dict[int, Op]:
        return {o: op for op in self.ops for o in op.outputs if o >= 0}

    def consumers(self) -> dict[int, list[Op]]:
        out: dict[int, list[Op]] = {}
        for op in self.ops:
            for i in op.inputs:
                if i >= 0:
                    out.setdefault(i, []).append(op)
        return out
