"""Seed 001: residual 3D landmark regressor in the style of MediaPipe FaceMesh (Hu).

192x192 RGB in. "FaceMesh blocks": depthwise 3x3 + pointwise 1x1 conv,
added to the (max-pooled, channel-padded) block input, PReLU. A backbone of
14 blocks, then two branches: 3D coordinates (68 x (x, y, z)) through 4 more
blocks, and a face confidence. Outputs ``landmarks`` [N, 68, 3] in input
pixels (z in the same units) and ``confidence`` [N, 1] (a logit).
"""

from __future__ import annotations

from torch import nn
from torch.nn import functional as F


class FaceMeshBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.stride, self.pad = stride, cout - cin
        self.dw = nn.Conv2d(cin, cin, 3, stride, 1 if stride == 1 else 0, groups=cin)
        self.pw = nn.Conv2d(cin, cout, 1)
        self.act = nn.PReLU(cout)

    def forward(self, x):
        y = x
        if self.stride == 2:
            y = F.max_pool2d(x, 2, 2)
            x = F.pad(x, (0, 1, 0, 1))  # TF-style "same" for the stride-2 depthwise conv
        if self.pad:
            y = F.pad(y, (0, 0, 0, 0, 0, self.pad))
        return self.act(self.pw(self.dw(x)) + y)


class Mesh3D(nn.Module):
    # (channels, stride) per backbone block: 14 blocks, 192 -> 6
    BACKBONE = [(16, 1), (16, 1), (32, 2), (32, 1), (32, 1), (48, 2), (48, 1), (48, 1),
                (64, 2), (64, 1), (64, 1), (96, 2), (96, 1), (96, 1)]
    COORD_CHANNELS = 192

    def __init__(self, num_landmarks: int = 68, input_size: int = 192):
        super().__init__()
        self.num_landmarks = num_landmarks
        self.input_size = input_size
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.PReLU(16))  # 96
        blocks, c = [], 16
        for cout, s in self.BACKBONE:
            blocks.append(FaceMeshBlock(c, cout, s))
            c = cout
        self.backbone = nn.Sequential(*blocks)  # 96 -> 6
        cb = self.COORD_CHANNELS
        self.coord_branch = nn.Sequential(
            FaceMeshBlock(c, cb, 2), FaceMeshBlock(cb, cb), FaceMeshBlock(cb, cb), FaceMeshBlock(cb, cb)
        )  # 6 -> 3
        # 3x3 -> 1x1: depthwise 3x3 (valid), then a 1x1 conv to the coordinates
        self.coords = nn.Sequential(nn.Conv2d(cb, cb, 3, groups=cb), nn.Conv2d(cb, num_landmarks * 3, 1))
        self.conf = nn.Sequential(nn.Conv2d(c, 32, 3, 2, 1), nn.PReLU(32), nn.Conv2d(32, 1, 3))

    def forward(self, x):
        f = self.backbone(self.stem(x))
        pts = self.coords(self.coord_branch(f)).flatten(1).view(-1, self.num_landmarks, 3)
        return pts, self.conf(f).flatten(1)
