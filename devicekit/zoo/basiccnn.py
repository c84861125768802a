"""Seed 004: the basic CNN with 1, 2 or 3 max-pools (Kendrick et al.).

96x96 grayscale in; a 3x3 conv with 32 filters, then 2x2 convs with 32 and
64 filters (valid padding), ReLU; 2x2 max-pools, removed "starting with the
first" for fewer pools; FC 1000 -> 500 -> 136 (68 points x (x, y)).
Output ``landmarks`` [N, 68, 2] in input pixels.
"""

from __future__ import annotations

from torch import nn


class BasicCNN(nn.Module):
    def __init__(self, pools: int = 3, num_landmarks: int = 68, input_size: int = 96):
        super().__init__()
        if pools not in (0, 1, 2, 3):
            raise ValueError("pools must be 0..3")
        self.num_landmarks = num_landmarks
        # pool after conv i when i >= 3 - pools (the first pools are removed first)
        layers: list[nn.Module] = []
        chans = [(1, 32, 3), (32, 32, 2), (32, 64, 2)]
        size = input_size
        for i, (cin, cout, k) in enumerate(chans):
            layers += [nn.Conv2d(cin, cout, k), nn.ReLU(inplace=True)]
            size = size - k + 1
            if i >= 3 - pools:
                layers.append(nn.MaxPool2d(2))
                size //= 2
        self.features = nn.Sequential(*layers)
        self.flat_features = 64 * size * size
        self.head = nn.Sequential(
            nn.Linear(self.flat_features, 1000),
            nn.ReLU(inplace=True),
            nn.Linear(1000, 500),
            nn.ReLU(inplace=True),
            nn.Linear(500, num_landmarks * 2),
        )

    def forward(self, x):
        # Flatten in NHWC order (as Keras, which the paper used, does): converters
        # that work in NHWC then need no TRANSPOSE before the first FC layer.
        f = self.features(x).permute(0, 2, 3, 1).flatten(1)
        return self.head(f).view(-1, self.num_landmarks, 2)
