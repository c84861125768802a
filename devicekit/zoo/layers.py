"""Layers shared by the zoo, written so every op converts cleanly.

Soft-argmax and the RoI crop are layout-agnostic: only elementwise ops with
broadcasting and reductions over the two spatial axes, no Reshape or
Transpose, so onnx2tf's NCHW->NHWC conversion needs no TRANSPOSE ops and
the same graph maps 1:1 to CoreML's MIL.
"""

from __future__ import annotations

import torch
from torch import nn


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


def axis_ramp(n: int, axis: int, like: torch.Tensor) -> torch.Tensor:
    """Constant 0..n-1 along spatial ``axis`` (2=H, 3=W), shaped [1,1,n,1] or [1,1,1,n].

    Converters that re-layout NCHW to NHWC (onnx2tf) handle such a constant
    only when the other operand has full spatial extent; so it is only ever
    combined with a [N, C, H, W] graph tensor here (measured: an Expand of
    it, a CumSum ramp, or a broadcast against [N, C, 1, 1] convert wrongly).
    """
    g = torch.arange(n, device=like.device, dtype=like.dtype)
    return g.view(1, 1, n, 1) if axis == 2 else g.view(1, 1, 1, n)


class SoftArgmax2d(nn.Module):
    """Expected (x, y) under softmax(heatmap) per channel, in heatmap cells.

    Input [N, L, H, W] -> (x, y), each [N, L, 1, 1]. Written with
    ReduceMax/Exp/ReduceSum over the spatial axes only (layout-agnostic).
    ``beta`` sharpens the distribution.
    """

    def __init__(self, beta: float = 1.0):
        super().__init__()
        self.beta = beta

    def forward(self, h: torch.Tensor):
        h = h * self.beta if self.beta != 1.0 else h
        m = torch.amax(h, dim=(2, 3), keepdim=True)
        e = torch.exp(h - m)
        s = torch.sum(e, dim=(2, 3), keepdim=True)
        gx = axis_ramp(h.shape[3], 3, h)
        gy = axis_ramp(h.shape[2], 2, h)
        x = torch.sum(e * gx, dim=(2, 3), keepdim=True) / s
        y = torch.sum(e * gy, dim=(2, 3), keepdim=True) / s
        return x, y


def roi_crop(maps: torch.Tensor, x: torch.Tensor, y: torch.Tensor, size: int) -> torch.Tensor:
    """RoIAlign of a ``size`` x ``size`` window around (x, y) of each channel.

    maps [N, L, H, W]; x, y [N, L, 1, 1] in cell units of ``maps``. Returns
    [N, L, size, size] (axis 2 walks y, axis 3 walks x), sampled bilinearly
    with zeros outside: ``grid_sample(..., mode='bilinear',
    padding_mode='zeros', align_corners=True)`` of channel l at the window
    around landmark l (tests/test_zoo.py checks this).

    Bilinear sampling is a product of tents: weight(h, w) = tent(h - py) *
    tent(w - px), tent(d) = relu(1 - |d|). Each window cell is
    sum(maps * ty_a * tx_b) over the spatial axes, so every op is
    elementwise on full [N, L, H, W] tensors or a spatial reduction: no
    gather, slice, reshape or transpose, which keeps onnx2tf's NHWC graph
    free of TRANSPOSE ops (measured: slices and partial reductions of the
    ramps made it insert them). The extra work is 2 * size^2 * L * H * W
    MACs, small next to the backbone.
    """
    half = (size - 1) / 2.0
    zero = maps * 0.0
    gx = zero + axis_ramp(maps.shape[3], 3, maps)  # [N, L, H, W]: x index
    gy = zero + axis_ramp(maps.shape[2], 2, maps)  # [N, L, H, W]: y index
    tx = [torch.relu(1.0 - torch.abs(gx - (x + (b - half)))) for b in range(size)]
    rows = []
    for a in range(size):
        weighted = maps * torch.relu(1.0 - torch.abs(gy - (y + (a - half))))
        rows.append(torch.cat([torch.sum(weighted * t, dim=(2, 3), keepdim=True) for t in tx], dim=3))
    return torch.cat(rows, dim=2)


def stack_xy(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """[N, L, 1, 1] x and y -> landmarks [N, L, 2]."""
    return torch.cat([x, y], dim=3).flatten(2)
