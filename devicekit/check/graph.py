"""Graph facts shared by the checks: op families across formats, weight tensors, MACs per op."""

from __future__ import annotations

import numpy as np

from ..modelfile.facts import ModelFacts, Op, Tensor

# op family -> names per format (tflite builtin, ONNX op_type, MIL op type)
FAMILIES = {
    "conv": {"CONV_2D", "Conv", "conv", "convolution"},
    "dwconv": {"DEPTHWISE_CONV_2D"},
    "tconv": {"TRANSPOSE_CONV", "ConvTranspose", "conv_transpose", "Convolution2DTransposeBias", "deconvolution"},
    "fc": {"FULLY_CONNECTED", "Gemm", "linear", "innerProduct"},
    "matmul": {"BATCH_MATMUL", "MatMul", "matmul", "batchedMatmul"},
    "pool": {"MAX_POOL_2D", "AVERAGE_POOL_2D", "MaxPool", "AveragePool", "max_pool", "avg_pool", "pooling"},
    "reshape": {"RESHAPE", "SQUEEZE", "EXPAND_DIMS", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "reshape", "squeeze", "expand_dims", "flatten"},
    "transpose": {"TRANSPOSE", "Transpose", "transpose"},
    "quantize": {"QUANTIZE", "QuantizeLinear", "quantize"},
    "dequantize": {"DEQUANTIZE", "DequantizeLinear", "dequantize", "constexpr_affine_dequantize"},
}
FAMILY_OF = {name: fam for fam, names in FAMILIES.items() for name in names}
LAYOUT = {"tflite": "NHWC", "onnx": "NCHW", "mlpackage": "NCHW"}


def family(op: Op) -> str | None:
    return FAMILY_OF.get(op.op)


def weight_tensor(facts: ModelFacts, op: Op) -> Tensor | None:
    """The weight input of a conv/FC/matmul op: input 1 (MIL: the ``weight`` input), or its const source."""
    idx = op.attrs.get("input:weight")
    if idx is None:
        if len(op.inputs) < 2:
            return None
        idx = op.inputs[1]
    t = facts.tensor(idx)
    return t


def const_source(facts: ModelFacts, t: Tensor, producers: dict[int, Op]) -> Tensor | None:
    """The const tensor behind ``t`` (itself, or the input of a DEQUANTIZE/cast chain feeding it)."""
    seen = 0
    while t is not None and not t.const and seen < 4:
        p = producers.get(t.index)
        if p is None or not p.inputs or family(p) not in ("dequantize",) and p.op not in ("cast", "Cast"):
            return None
        t = facts.tensor(p.inputs[0])
        seen += 1
    return t if t is not None and t.const else None


def op_macs(facts: ModelFacts, op: Op) -> int:
    """Multiply-accumulates of one op from its tensor shapes (0 for ops without a weight or matmul)."""
    fam = family(op)
    if fam not in ("conv", "dwconv", "tconv", "fc", "matmul") or not op.outputs:
        return 0
    out = facts.tensor(op.outputs[0])
    w = weight_tensor(facts, op)
    if out is None or w is None or not w.shape:
        return 0
    wel = w.elements
    if fam == "tconv":
        data = facts.tensor(op.inputs[2] if op.op == "TRANSPOSE_CONV" and len(op.inputs) > 2 else op.inputs[0])
        if data is None:
            return 0
        cin = data.shape[-1] if facts.format == "tflite" else (data.shape[1] if len(data.shape) > 1 else 1)
        return int(data.elements * wel // max(cin, 1))
    if fam == "matmul":
        a = facts.tensor(op.inputs[0])
        k = a.shape[-1] if a is not None and a.shape else 1
        return int(out.elements * max(k, 1))
    if facts.format == "tflite":
        cout = w.shape[-1] if fam == "dwconv" else w.shape[0]
    elif fam == "fc" and op.op == "Gemm" and op.attrs.get("transB", 1) == 0:
        cout = w.shape[-1]
    elif fam == "fc" and op.op == "linear":
        cout = w.shape[0]
    else:
        cout = w.shape[0]
    return int(out.elements * wel // max(cout, 1))


def all_macs(facts: ModelFacts) -> list[int]:
    return [op_macs(facts, op) for op in facts.ops]


def runs_in_float(facts: ModelFacts, op: Op) -> bool:
    """True when an op computes on float activations (its non-const inputs or outputs are float)."""
    if family(op) in ("quantize", "dequantize"):
        return False
    ts = [facts.tensor(i) for i in op.inputs + op.outputs if i >= 0]
    acts = [t for t in ts if t is not None and not t.const]
    return any(t.dtype in ("float32", "float16", "bfloat16", "float64") for t in acts)


def spatial_chw(facts: ModelFacts, t: Tensor) -> tuple[int, int, int] | None:
    """(C, H, W) of a rank-4 activation in the file's layout."""
    if len(t.shape) != 4:
        return None
    if LAYOUT[facts.format] == "NHWC":
        _, h, w, c = t.shape
    else:
        _, c, h, w = t.shape
    return int(c), int(h), int(w)


def human_bytes(n: float) -> str:
    n = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def mib(n: float) -> float:
    return round(float(n) / 2**20, 2)


__all__ = ["FAMILIES", "family", "weight_tensor", "const_source", "op_macs", "all_macs", "runs_in_float", "spatial_chw", "human_bytes", "mib", "np"]
