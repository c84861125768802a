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


def _grid(n: int, axis: int, device, dtype) -> torch.Tensor:
    """Cell-centre coordinates 0..n-1 shaped to broadcast along spatial ``axis`` (2=H, 3=W)."""
    g = torch.arange(n, device=device, dtype=dtype)
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
        gx = _grid(h.shape[3], 3, h.device, h.dtype)
        gy = _grid(h.shape[2], 2, h.device, h.dtype)
        x = torch.sum(e * gx, dim=(2, 3), keepdim=True) / s
        y = torch.sum(e * gy, dim=(2, 3), keepdim=True) / s
        return x, y


def roi_crop(maps: torch.Tensor, x: torch.Tensor, y: torch.Tensor, size: int) -> torch.Tensor:
    """RoIAlign of a ``size`` x ``size`` window around (x, y) of each channel.

    maps [N, L, H, W]; x, y [N, L, 1, 1] in cell units of ``maps``. Returns
    [N, L, size(x), size(y)] -- axis 2 walks x, axis 3 walks y -- sampled
    bilinearly (zeros outside), i.e. ``grid_sample(..., mode='bilinear',
    padding_mode='zeros', align_corners=True)`` of channel l at the window
    around landmark l. Bilinear sampling is separable: weight(h, w) =
    tent(h - py) * tent(w - px) with tent(d) = relu(1 - |d|), so each window
    row is two multiplies and two spatial sums, with no gather, reshape or
    transpose.
    """
    n, l, h, w = maps.shape
    half = (size - 1) / 2.0
    offs = _grid(size, 2, maps.device, maps.dtype) - half  # [1,1,size,1]
    gx = _grid(w, 3, maps.device, maps.dtype)  # [1,1,1,W]
    gy = _grid(h, 2, maps.device, maps.dtype)  # [1,1,H,1]
    # tent weights along x for every window column b: [N, L, size, W]
    tx = torch.relu(1.0 - torch.abs(gx - (x + offs)))
    rows = []
    for a in range(size):
        ty = torch.relu(1.0 - torch.abs(gy - (y + (a - half))))  # [N, L, H, 1]
        row = torch.sum(maps * ty, dim=2, keepdim=True)  # [N, L, 1, W]
        rows.append(torch.sum(row * tx, dim=3, keepdim=True))  # [N, L, size, 1]
    return torch.cat(rows, dim=3)  # [N, L, size(x), size(y)]


def stack_xy(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """[N, L, 1, 1] x and y -> landmarks [N, L, 2]."""
    return torch.cat([x, y], dim=3).flatten(2)
