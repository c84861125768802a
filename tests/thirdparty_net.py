"""A small third-party-style landmark net that is not in the zoo (test fixture).

ceil_mode max-pooling, PReLU, two output heads (landmarks and a visibility
score), written as a user would, without devicekit's layout care.
"""

import torch
from torch import nn


class TwoHeadNet(nn.Module):
    def __init__(self, num_landmarks: int = 5):
        super().__init__()
        self.num_landmarks = num_landmarks
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.PReLU(8),
            nn.MaxPool2d(2, ceil_mode=True),  # 45 -> 23
            nn.Conv2d(8, 16, 3, padding=1),
            nn.PReLU(16),
            nn.MaxPool2d(2, ceil_mode=True),  # 23 -> 12
            nn.Conv2d(16, 16, 3, padding=1),
            nn.PReLU(16),
        )
        self.points = nn.Linear(16, num_landmarks * 2)
        self.score = nn.Linear(16, 1)

    def forward(self, x):
        f = self.body(x).mean(dim=(2, 3))
        return self.points(f).view(-1, self.num_landmarks, 2) * 45.0, torch.sigmoid(self.score(f))
