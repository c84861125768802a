"""A small CNN-attention hybrid in the style of MobileViT / EfficientFormer (test fixture, not in the zoo).

Conv stem and inverted residuals, then a transformer block on the feature
map's tokens (LayerNorm, multi-head self-attention with softmax, a GELU
MLP), folded back into a feature map; a 100-way classifier head. Written the
way such models are usually written: nn.LayerNorm, nn.GELU, matmuls.
"""

from __future__ import annotations

import torch
from torch import nn


class InvertedResidual(nn.Module):
    def __init__(self, c: int, expand: int = 4):
        super().__init__()
        h = c * expand
        self.body = nn.Sequential(
            nn.Conv2d(c, h, 1),
            nn.BatchNorm2d(h),
            nn.SiLU(),
            nn.Conv2d(h, h, 3, 1, 1, groups=h),
            nn.BatchNorm2d(h),
            nn.SiLU(),
            nn.Conv2d(h, c, 1),
            nn.BatchNorm2d(c),
        )

    def forward(self, x):
        return x + self.body(x)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int = 4):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):  # [B, N, D]
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-2, -1)) * self.scale
        out = att.softmax(dim=-1) @ v  # [B, H, N, d/H]
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class TransformerBlock(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.norm1, self.att = nn.LayerNorm(dim), Attention(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * 2), nn.GELU(), nn.Linear(dim * 2, dim))

    def forward(self, x):
        x = x + self.att(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class HybridNet(nn.Module):
    def __init__(self, classes: int = 100, dim: int = 64):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 32, 3, 2, 1),
            nn.BatchNorm2d(32),
            nn.SiLU(),  # 64 -> 32
            InvertedResidual(32),
            nn.Conv2d(32, dim, 3, 2, 1),
            nn.BatchNorm2d(dim),
            nn.SiLU(),  # -> 16
            InvertedResidual(dim),
            nn.Conv2d(dim, dim, 3, 2, 1),
        )  # -> 8
        self.blocks = nn.Sequential(TransformerBlock(dim), TransformerBlock(dim))
        self.fuse = nn.Sequential(nn.Conv2d(dim, 128, 1), nn.BatchNorm2d(128), nn.SiLU())
        self.head = nn.Linear(128, classes)

    def forward(self, x):
        f = self.stem(x)
        b, c, h, w = f.shape
        t = self.blocks(f.flatten(2).transpose(1, 2))  # [B, HW, C]
        f = t.transpose(1, 2).reshape(b, c, h, w)
        return self.head(self.fuse(f).mean(dim=(2, 3)))


def make(seed: int = 0) -> HybridNet:
    """Random weights with non-trivial BatchNorm statistics (as the corpus models), eval mode."""
    torch.manual_seed(seed)
    net = HybridNet()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net.eval()
