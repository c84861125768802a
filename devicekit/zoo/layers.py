"""Layers shared by the zoo, written so every op converts cleanly.

Soft-argmax and the RoI crop are layout-agnostic: only elementwise ops with
broadcasting and reductions over the two spatial axes, no Reshape or
Transpose, so onnx2tf's NCHW->NHWC conversion needs no TRANSPOSE ops and
the same graph maps 1:1 to CoreML's MIL.
"""

from __future__ import annotations

import torch
import torch.fx
from torch import nn
from torch.nn import functional as F


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 linear projection."""

    def __init__(self, cin: int, cout: int, stride: int = 1, expand: int = 4):
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(conv_bn(cin, hidden, 1))
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden), conv_bn(hidden, cout, 1, act=False)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return x + y if self.residual else y


def ramps(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell-index ramps (x [N, 1, H, W] with value w, y with value h) made in the graph from ``u``.

    ``u`` is a tensor of ones, [N, C, H, W], derived from the data. The ramp
    is an all-ones convolution over ``u`` padded on one side (out[w] = w + 1),
    not a stored constant: measured with onnx2tf 1.29, every constant form of
    a ramp ([1, 1, 1, W] / [1, 1, H, 1], as buffers, Constant nodes, with
    extra channels, expanded, or a CumSum) is re-laid out wrongly when H == W
    -- x and y come out swapped (invisible with random weights, whose
    landmarks all sit at the centre; caught on the trained demo model).
    Convolution weights are the one thing its NCHW -> NHWC conversion always
    gets right. The cost is H * W * (C + H + W) MACs.
    """
    c, h, w = u.shape[1], u.shape[2], u.shape[3]
    # channels -> 1 with a 1x1 ones convolution (C ones sum to C exactly); a
    # channel reduction made onnx2tf transpose back to NCHW
    u1 = F.conv2d(u, torch.ones(1, c, 1, 1, dtype=u.dtype, device=u.device)) / float(c)
    kx = torch.ones(1, 1, 1, w, dtype=u.dtype, device=u.device)
    ky = torch.ones(1, 1, h, 1, dtype=u.dtype, device=u.device)
    gx = F.conv2d(F.pad(u1, (w - 1, 0, 0, 0)), kx) - 1.0
    gy = F.conv2d(F.pad(u1, (0, 0, h - 1, 0)), ky) - 1.0
    return gx, gy


# torch.fx (coremltools' W8A8 calibration, torch.ao quantization) cannot trace
# ``ramps``: its kernel sizes and the 1/C scale come from the input's shape, a
# Proxy under symbolic tracing ("float() argument must be ... not 'Proxy'").
# Make it one leaf call there; eager runs, torch.export, jit.trace and the
# ONNX exporters are untouched (fx.wrap only acts inside symbolic tracing), so
# the exported graph stays identical. Nothing in it is learned and its output
# feeds float coordinate math only, so no quantizer belongs inside it anyway.
torch.fx.wrap("ramps")


class SoftArgmax2d(nn.Module):
    """Expected (x, y) under softmax(heatmap) per channel, in heatmap cells.

    Input [N, L, H, W] -> (x, y), each [N, L, 1, 1]. ReduceMax / Exp /
    ReduceSum over the spatial axes and ramps made by ``ramps`` from the
    softmax itself (so the quantisation policy, which keeps everything
    computed from a softmax in float, keeps them in float).
    """

    def forward(self, hm: torch.Tensor):
        m = torch.amax(hm, dim=(2, 3), keepdim=True)
        e = torch.exp(hm - m)
        s = torch.sum(e, dim=(2, 3), keepdim=True)
        gx, gy = ramps(e * 0.0 + 1.0)
        x = torch.sum(e * gx, dim=(2, 3), keepdim=True) / s
        y = torch.sum(e * gy, dim=(2, 3), keepdim=True) / s
        return x, y


def roi_crop(maps: torch.Tensor, x: torch.Tensor, y: torch.Tensor, size: int) -> torch.Tensor:
    """RoIAlign of a ``size`` x ``size`` window around (x, y) of each channel.

    maps [N, L, H, W]; x, y [N, L, 1, 1] in cell units of ``maps``. Returns
    [N, L, size, size] (axis 2 walks y, axis 3 walks x), sampled bilinearly
    with zeros outside: ``grid_sample(..., mode='bilinear',
    padding_mode='zeros', align_corners=True)`` of channel l at the window
    around landmark l (``roi_crop_grid``; tests/test_zoo_layers.py checks
    that both give the same numbers and gradients).

    Bilinear sampling is a product of tents: weight(h, w) = tent(h - py) *
    tent(w - px), tent(d) = relu(1 - |d|). Each window cell is
    sum(maps * ty_a * tx_b) over the spatial axes, so every op is
    elementwise on full [N, L, H, W] tensors or a spatial reduction: no
    gather, slice, reshape or transpose, which keeps onnx2tf's NHWC graph
    free of TRANSPOSE ops (measured: slices and partial reductions made it
    insert them). The ramps come from (x, y), so they count as coordinate
    math for the quantisation policy. The extra work is 2 * size^2 * L * H * W
    MACs, small next to the backbone.
    """
    half = (size - 1) / 2.0
    gx, gy = ramps(maps * 0.0 + (x * 0.0 + 1.0))
    tx = [torch.relu(1.0 - torch.abs(gx - (x + (b - half)))) for b in range(size)]
    rows = []
    for a in range(size):
        weighted = maps * torch.relu(1.0 - torch.abs(gy - (y + (a - half))))
        rows.append(torch.cat([torch.sum(weighted * t, dim=(2, 3), keepdim=True) for t in tx], dim=3))
    return torch.cat(rows, dim=2)


def roi_crop_grid(maps: torch.Tensor, x: torch.Tensor, y: torch.Tensor, size: int) -> torch.Tensor:
    """``roi_crop`` as one ``grid_sample``: the same numbers (to float rounding), for training only.

    roi_crop's tents cost 2 * size^2 full-map products per call, which made it a sixth of a training
    step of zoo:heatmap2s on this CPU; this form samples only the size^2 window cells. It is not the
    export form (grid_sample is a gather: onnx2tf and CoreML handle it worse, see roi_crop).
    """
    n, l, h, w = maps.shape
    off = torch.arange(size, dtype=maps.dtype) - (size - 1) / 2.0
    gx = (x.reshape(n, l, 1, 1) + off.view(1, 1, 1, size)).expand(n, l, size, size)
    gy = (y.reshape(n, l, 1, 1) + off.view(1, 1, size, 1)).expand(n, l, size, size)
    grid = torch.stack([gx * (2.0 / (w - 1)) - 1.0, gy * (2.0 / (h - 1)) - 1.0], dim=-1).reshape(n * l, size, size, 2)
    out = F.grid_sample(maps.reshape(n * l, 1, h, w), grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out.reshape(n, l, size, size)


def stack_xy(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """[N, L, 1, 1] x and y -> landmarks [N, L, 2]."""
    return torch.cat([x, y], dim=3).flatten(2)
