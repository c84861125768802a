"""Quantization-aware fine-tuning for zoo:heatmap2s: simulate the int8 TFLite the converter writes, in training.

The int8 file (converters/tflite_int8.py) stores each convolution's weights
per output channel, symmetric in [-127, 127], and each activation tensor per
tensor, asymmetric in [-128, 127] with the range calibration saw. ``attach``
makes the PyTorch model see the same rounding while it trains (straight-
through gradients, ``torch.fake_quantize_*``):

- weights: every Conv2d's weight through a parametrization, per output
  channel. Batch norm is not folded first; the converter folds it, which
  scales each output channel by one number, so per-channel symmetric
  rounding of the unfolded weight is the same rounding;
- activations: the tensors the int8 graph stores -- the input, the output of
  every conv-BN(-ReLU6) block, every inverted-residual block (after its
  add) and the two heads -- with min/max tracked as an exponential moving
  average in training (the first batch sets them), frozen in eval.

The soft-argmax and coordinate math after the heads stay float, as the
default quantisation policy keeps them. ``detach`` removes all of it and
leaves the plain float weights, so the state dict saved afterwards loads
into an unmodified Heatmap2S.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

MOMENTUM = 0.01  # of the activation ranges' moving average


class _WeightFq(nn.Module):
    def forward(self, w: torch.Tensor) -> torch.Tensor:
        scale = w.detach().abs().flatten(1).amax(1).clamp_min(1e-8) / 127.0
        zero = torch.zeros(w.shape[0], dtype=torch.int32)
        return torch.fake_quantize_per_channel_affine(w, scale, zero, 0, -127, 127)


class _ActFq:
    """A forward hook: per-tensor asymmetric int8 rounding of the module's output, range = moving min/max."""

    def __init__(self):
        self.lo: float | None = None
        self.hi: float | None = None

    def __call__(self, module, inputs, out):
        return self.apply(out, module.training)

    def apply(self, x: torch.Tensor, training: bool) -> torch.Tensor:
        if training or self.lo is None:
            lo, hi = min(float(x.detach().min()), 0.0), max(float(x.detach().max()), 0.0)
            if self.lo is None:
                self.lo, self.hi = lo, hi
            else:
                self.lo += MOMENTUM * (lo - self.lo)
                self.hi += MOMENTUM * (hi - self.hi)
        scale = max(self.hi - self.lo, 1e-8) / 255.0
        zero = int(round(-128 - self.lo / scale))
        return torch.fake_quantize_per_tensor_affine(x, scale, max(-128, min(127, zero)), -128, 127)


class Attached:
    def __init__(self, model: nn.Module, convs: list[nn.Conv2d], hooks: list, acts: list[_ActFq]):
        self.model, self.convs, self.hooks, self.acts = model, convs, hooks, acts

    def ranges(self) -> list[tuple[float, float]]:
        return [(a.lo, a.hi) for a in self.acts]


def _stored_tensors(model: nn.Module) -> list[nn.Module]:
    """The modules whose outputs the int8 graph stores as int8 tensors (see the module docstring)."""
    from devicekit.zoo.layers import InvertedResidual

    out = [m for m in model.modules() if isinstance(m, InvertedResidual)]
    for m in model.modules():
        if isinstance(m, nn.Sequential) and len(m) and isinstance(m[0], nn.Conv2d):
            out.append(m)  # conv_bn
    return out + [model.head1, model.refine]


def attach(model: nn.Module) -> Attached:
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    for c in convs:
        parametrize.register_parametrization(c, "weight", _WeightFq())
    acts, hooks = [], []
    first = _ActFq()
    acts.append(first)
    # on the first block, not the model: the training script calls Heatmap2S.stages, not forward
    hooks.append(model.stem.register_forward_pre_hook(lambda m, args: (first.apply(args[0], m.training), *args[1:])))
    for m in _stored_tensors(model):
        a = _ActFq()
        acts.append(a)
        hooks.append(m.register_forward_hook(a))
    return Attached(model, convs, hooks, acts)


def detach(att: Attached) -> None:
    """Back to the plain float model (the weights as trained, not rounded)."""
    for h in att.hooks:
        h.remove()
    for c in att.convs:
        parametrize.remove_parametrizations(c, "weight", leave_parametrized=False)
