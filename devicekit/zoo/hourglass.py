"""Seed 002: Mobile Hourglass face parser (Yan, thesis ch. 7).

An hourglass (encoder-decoder) of MobileNetV2 inverted-residual blocks with
skip connections, giving a per-pixel label map. 11 classes as in the Helen
face-parsing set (background, skin, brows x2, eyes x2, nose, lips x2,
inner mouth, hair). Output ``logits`` [N, 11, H/2, W/2].
"""

from __future__ import annotations

from torch import nn
from torch.nn import functional as F

from .layers import InvertedResidual, conv_bn


class MobileHourglass(nn.Module):
    def __init__(self, num_classes: int = 11, input_size: int = 128, width: int = 16):
        super().__init__()
        w = width
        self.input_size = input_size
        self.stem = conv_bn(3, w, 3, 2)  # 1/2
        self.down1 = nn.Sequential(InvertedResidual(w, 2 * w, 2), InvertedResidual(2 * w, 2 * w))  # 1/4
        self.down2 = nn.Sequential(InvertedResidual(2 * w, 3 * w, 2), InvertedResidual(3 * w, 3 * w))  # 1/8
        self.down3 = nn.Sequential(InvertedResidual(3 * w, 4 * w, 2), InvertedResidual(4 * w, 4 * w), InvertedResidual(4 * w, 4 * w))  # 1/16
        self.bottleneck = nn.Sequential(InvertedResidual(4 * w, 4 * w), InvertedResidual(4 * w, 4 * w))
        self.up3 = InvertedResidual(4 * w + 3 * w, 3 * w, 1, expand=2)
        self.up2 = InvertedResidual(3 * w + 2 * w, 2 * w, 1, expand=2)
        self.up1 = InvertedResidual(2 * w + w, w, 1, expand=2)
        self.classifier = nn.Conv2d(w, num_classes, 1)

    @staticmethod
    def _up(x, like):
        return F.interpolate(x, size=like.shape[2:], mode="nearest")

    def forward(self, x):
        s = self.stem(x)
        d1 = self.down1(s)
        d2 = self.down2(d1)
        b = self.bottleneck(self.down3(d2))
        u = self.up3(_cat(self._up(b, d2), d2))
        u = self.up2(_cat(self._up(u, d1), d1))
        u = self.up1(_cat(self._up(u, s), s))
        return self.classifier(u)


def _cat(a, b):
    import torch

    return torch.cat([a, b], dim=1)
