"""CoreML quantisation steps: int8 weights, palettisation, and W8A8 calibrated in PyTorch.

W8A8: ``coremltools.optimize.coreml.linear_quantize_activations`` calibrates
by running the model with ``predict``, which needs macOS. So activations are
calibrated on the PyTorch side with ``coremltools.optimize.torch``'s
``LinearQuantizer`` on the same real calibration images the TFLite path
uses (observers only, no training: ``milestones=[0, inf, inf, 0]``), the
finalized module is traced, and ``ct.convert`` turns its
quantize/dequantize pairs into MIL ``quantize``/``dequantize`` ops around
int8 weights (``constexpr_affine_dequantize``).

Only convolutions and fully connected layers get int8 inputs, weights and
outputs (the work the Neural Engine does in int8). Under the keep-float-tail
policy (``QuantPolicy.keep_float_tail``), as on the TFLite path, the
coordinate math after the last learned layer (soft-argmax, RoI sampling,
decoding) never sees a quantizer, and a learned layer whose output reaches a
model output through shape/arith ops only (a coordinate regressor's last FC
or conv) stays float as well.
"""

from __future__ import annotations

import numpy as np

from devicekit.errors import ConversionError

WEIGHTED = {"conv2d", "linear", "conv1d", "convolution", "conv_transpose2d"}
# ops that only move or rescale data: a weighted op reaching an output through these alone is an output layer
PASS_THROUGH = {"view", "reshape", "flatten", "permute", "transpose", "squeeze", "unsqueeze", "cat", "add", "sub", "mul",
                "div", "clone", "contiguous", "_unsafe_view", "expand", "alias", "_to_copy", "getitem", "split",
                "split_with_sizes", "slice", "select"}


def output_layers(model) -> list[dict]:
    """Learned layers (module names) whose output reaches a model output through shape/arith ops only."""
    import torch

    ep = torch.export.export(model.module, (torch.zeros(model.spec.shape),)).run_decompositions({})
    graph = ep.graph
    out_node = next(n for n in graph.nodes if n.op == "output")

    def kind(n):
        return str(getattr(n.target, "__name__", n.target)).split(".")[0]

    memo: dict = {}

    def reaches_output_directly(n) -> bool:
        if n in memo:
            return memo[n]
        memo[n] = False
        hit = False
        for u in n.users:
            if u is out_node or (kind(u) in PASS_THROUGH and reaches_output_directly(u)):
                hit = True
                break
        memo[n] = hit
        return hit

    found = []
    for n in graph.nodes:
        if n.op == "call_function" and kind(n) in WEIGHTED and reaches_output_directly(n):
            stack = n.meta.get("nn_module_stack") or {}
            if stack:
                path = list(stack.values())[-1][0]
                found.append({"layer": path, "op": kind(n), "why": "output layer (coordinate regression)"})
    return found


def _fix_int_reciprocal() -> None:
    """coremltools' ``reciprocal`` refuses int inputs; a traced ``size / shape[i]`` yields one. Cast first."""
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.frontend.torch import ops as torch_ops
    from coremltools.converters.mil.frontend.torch.torch_op_registry import _TORCH_OPS_REGISTRY, register_torch_op
    from coremltools.converters.mil.mil import types

    if getattr(_TORCH_OPS_REGISTRY, "_devicekit_reciprocal", False):
        return

    @register_torch_op(override=True)
    def reciprocal(context, node):
        x = torch_ops._get_inputs(context, node, expected=1)[0]
        if not types.is_float(x.dtype):
            x = mb.cast(x=x, dtype="fp32")
        context.add(mb.inverse(x=x, name=node.name))

    _TORCH_OPS_REGISTRY._devicekit_reciprocal = True


def _fused_with_conv() -> tuple:
    import torch

    nn = torch.nn
    # modules torch.ao fuses into a conv/linear: they must share its qconfig
    return (nn.Conv2d, nn.Linear, nn.Conv1d, nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU)


def w8a8_module(model, calib, policy):
    """Calibrate activation ranges in PyTorch; returns (traced TorchScript module, float layers)."""
    import torch
    from coremltools.optimize.torch.quantization import (LinearQuantizer, LinearQuantizerConfig,
                                                         ModuleLinearQuantizerConfig)

    fused = _fused_with_conv()
    big = 10 ** 9  # [observers on, fake quant on, observers frozen, BN frozen] at these steps: observe only (PTQ)
    mcfg = ModuleLinearQuantizerConfig(quantization_scheme="symmetric", milestones=[0, big, big, 0])
    tail = output_layers(model) if policy.keep_float_tail else []
    cfg = LinearQuantizerConfig(
        global_config=None,
        module_type_configs={**_float_everything_else(fused), **{t: mcfg for t in fused}},
        module_name_configs={t["layer"]: None for t in tail},
    )
    import copy

    module = copy.deepcopy(model.module).eval()
    x0 = torch.from_numpy(np.ascontiguousarray(calib.inputs[:1], np.float32))
    try:
        q = LinearQuantizer(module, cfg)
        prepared = q.prepare(example_inputs=(x0,), inplace=True)
        q.step()
        with torch.no_grad():
            for x in calib.inputs:
                prepared(torch.from_numpy(np.ascontiguousarray(x[None], np.float32)))
        prepared.eval()
        final = q.finalize(inplace=True)
        with torch.no_grad():
            traced = torch.jit.trace(final, (x0,), check_trace=False)
    except Exception as exc:  # noqa: BLE001 - FX tracing / observers raise many kinds
        raise ConversionError(f"W8A8 calibration of {model.name} in PyTorch failed ({_first(exc)})",
                              hint="try --target coreml-int8 (weights only), or a model without data-dependent control flow") from None
    _fix_int_reciprocal()
    return traced, tail


def _float_everything_else(fused: tuple) -> dict:
    """Object-type configs that keep every non-conv/linear op float.

    With ``global_config=None`` coremltools still gives every op it supports
    (add, mul, cat, relu6, ...) a default activation qconfig, which put
    quantizers inside the soft-argmax tail (measured: 0.25 px systematic
    error on heatmap2s). Setting them to None leaves int8 only at the
    learned layers.
    """
    from coremltools.optimize.torch.quantization import _qconfig_mapping as qm

    keep = ("conv", "linear")
    out = {}
    for m in list(qm._get_supported_modules()) + [m for m in qm._fixed_qparams_modules if not isinstance(m, str)]:
        name = str(getattr(m, "__name__", m)).lower()
        if not any(k in name for k in keep) and m not in fused:
            out[m] = None
    return out


def quantize_weights(mlmodel, opts):
    """int8 weights (``linear_quantize_weights``, per channel, symmetric), or palettised if asked."""
    import coremltools as ct
    from coremltools.optimize.coreml import OpLinearQuantizerConfig, OptimizationConfig

    nbits = opts.extra.get("palettize")
    if nbits:
        return palettize(mlmodel, int(nbits)), {"mode": f"palettized-{int(nbits)}bit", "weights": f"{int(nbits)}-bit lookup table (k-means)"}
    cfg = OptimizationConfig(global_config=OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_channel"))
    return ct.optimize.coreml.linear_quantize_weights(mlmodel, config=cfg), {"mode": "int8-weights", "weights": "int8 per channel, symmetric"}


def palettize(mlmodel, nbits: int):
    import coremltools as ct
    from coremltools.optimize.coreml import OpPalettizerConfig, OptimizationConfig

    cfg = OptimizationConfig(global_config=OpPalettizerConfig(mode="kmeans", nbits=nbits))
    return ct.optimize.coreml.palettize_weights(mlmodel, config=cfg)


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
