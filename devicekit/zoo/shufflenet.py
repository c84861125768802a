"""Seed 003: ShuffleNetV2 landmark regressor (wing loss, 1-euro filter downstream).

ShuffleNetV2 0.5x units (channel split, channel shuffle) on a 112x112 RGB
face crop; global pooling and an FC head regress 68 (x, y) points. Output
``landmarks`` [N, 68, 2] in input pixels. The channel shuffle is a real
reshape-transpose-reshape, as in the paper, so converters see it.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import conv_bn


def channel_shuffle(x: torch.Tensor, groups: int = 2) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.stride = stride
        branch = cout // 2
        if stride == 2:
            self.left = nn.Sequential(nn.Conv2d(cin, cin, 3, 2, 1, groups=cin, bias=False), nn.BatchNorm2d(cin), conv_bn(cin, branch, 1))
            rin = cin
        else:
            self.left = None
            rin = branch
        self.right = nn.Sequential(
            conv_bn(rin, branch, 1),
            nn.Conv2d(branch, branch, 3, stride, 1, groups=branch, bias=False),
            nn.BatchNorm2d(branch),
            conv_bn(branch, branch, 1),
        )

    def forward(self, x):
        if self.stride == 1:
            a, b = x.chunk(2, dim=1)
            out = torch.cat([a, self.right(b)], dim=1)
        else:
            out = torch.cat([self.left(x), self.right(x)], dim=1)
        return channel_shuffle(out)


class ShuffleNetReg(nn.Module):
    STAGES = [(48, 4), (96, 8), (192, 4)]  # ShuffleNetV2 0.5x

    def __init__(self, num_landmarks: int = 68, input_size: int = 112):
        super().__init__()
        self.num_landmarks = num_landmarks
        self.stem = nn.Sequential(conv_bn(3, 24, 3, 2), nn.MaxPool2d(3, 2, 1))
        units, c = [], 24
        for cout, repeat in self.STAGES:
            units.append(ShuffleUnit(c, cout, 2))
            units += [ShuffleUnit(cout, cout, 1) for _ in range(repeat - 1)]
            c = cout
        self.units = nn.Sequential(*units)
        self.conv5 = conv_bn(c, 512, 1)
        self.fc = nn.Linear(512, num_landmarks * 2)

    def forward(self, x):
        f = self.conv5(self.units(self.stem(x)))
        return self.fc(f.mean(dim=(2, 3))).view(-1, self.num_landmarks, 2)
