"""Seed 000: two-stage heatmap landmark tracker (Li et al., ModiFace).

Stage 1: MobileNetV2 inverted-residual backbone -> one low-resolution
heatmap per landmark -> soft-argmax gives coarse coordinates.
Stage 2: shared features branch off the 1/4-resolution backbone stage; a
group convolution (one group per landmark, separate weights per landmark)
turns them into per-landmark refinement maps; RoIAlign crops a window
around each coarse prediction; soft-argmax over the window gives the offset
that refines the coarse point.

Output: ``landmarks`` [N, L, 2], (x, y) in input pixels (pixel centres at
i + 0.5). Everything after the last convolution is coordinate math, which
the default quantisation policy keeps in float.
"""

from __future__ import annotations

from torch import nn

from .layers import InvertedResidual, SoftArgmax2d, conv_bn, roi_crop, stack_xy


class Heatmap2S(nn.Module):
    def __init__(self, num_landmarks: int = 68, in_ch: int = 3, input_size: int = 128, width: int = 16, window: int = 5):
        super().__init__()
        if input_size % 16:
            raise ValueError("input_size must be a multiple of 16")
        w = width
        self.num_landmarks = num_landmarks
        self.input_size = input_size
        self.window = window
        self.stem = nn.Sequential(conv_bn(in_ch, w, 3, 2), InvertedResidual(w, w, 1, expand=1))  # 1/2
        self.stage2 = nn.Sequential(InvertedResidual(w, w * 3 // 2, 2), InvertedResidual(w * 3 // 2, w * 3 // 2))  # 1/4
        c2 = w * 3 // 2
        self.stage3 = nn.Sequential(  # 1/8
            InvertedResidual(c2, 2 * w, 2),
            InvertedResidual(2 * w, 2 * w),
            InvertedResidual(2 * w, 2 * w),
            InvertedResidual(2 * w, 4 * w),
            InvertedResidual(4 * w, 4 * w),
            InvertedResidual(4 * w, 4 * w),
        )
        self.head1 = nn.Conv2d(4 * w, num_landmarks, 1)
        # stage 2: shared convs on the 1/4 features, then per-landmark group conv
        per = 4
        self.shared = nn.Sequential(InvertedResidual(c2, 2 * w, 1, expand=2), conv_bn(2 * w, num_landmarks * per, 1))
        self.refine = nn.Conv2d(num_landmarks * per, num_landmarks, 3, 1, 1, groups=num_landmarks)
        self.softargmax = SoftArgmax2d()

    def forward(self, x):
        return self.stages(x)

    def stages(self, x, crop=roi_crop, parts: bool = False):
        """forward; with ``parts`` also the stage-1 heatmaps and coarse points, (heatmaps, coarse, final), for
        training (scripts/train_heatmap2s.py, which also passes ``crop=roi_crop_grid``: the same numbers, faster)."""
        f2 = self.stage2(self.stem(x))
        f3 = self.stage3(f2)
        h1 = self.head1(f3)
        x1, y1 = self.softargmax(h1)  # coarse, in 1/8 cells
        r = self.refine(self.shared(f2))  # per-landmark maps at 1/4
        s1, s2 = self.input_size / h1.shape[3], self.input_size / r.shape[3]
        # coarse point in 1/4-grid cell coordinates (cell centres)
        cx = (x1 + 0.5) * (s1 / s2) - 0.5
        cy = (y1 + 0.5) * (s1 / s2) - 0.5
        win = crop(r, cx, cy, self.window)  # [N, L, win, win]
        ox, oy = self.softargmax(win)
        half = (self.window - 1) / 2.0
        px = (cx + (ox - half) + 0.5) * s2
        py = (cy + (oy - half) + 0.5) * s2
        if not parts:
            return stack_xy(px, py)
        return h1, stack_xy((x1 + 0.5) * s1, (y1 + 0.5) * s1), stack_xy(px, py)
