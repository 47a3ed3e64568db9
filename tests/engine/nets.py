"""Small random CNNs for engine tests."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class TinyCNN(nn.Module):
    """conv-bn-relu ×3 → 'features' → GAP → linear; 'features' is the post-activation last block;
    with ``inplace=True`` its ReLU works in place on the BN output."""

    def __init__(self, classes: int = 10, width: int = 8, seed: int = 0, inplace: bool = False) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        self.body = nn.Sequential(
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU()
        )
        self.features = nn.Sequential(
            nn.Conv2d(2 * width, 4 * width, 3, stride=2, padding=1), nn.BatchNorm2d(4 * width), nn.ReLU(inplace)
        )
        self.post = nn.Identity()
        self.head = nn.Linear(4 * width, classes)
        for m in self.modules():  # non-trivial BN statistics
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                nn.init.uniform_(m.weight, 0.5, 1.5)
                nn.init.uniform_(m.bias, -0.2, 0.2)
        self.eval()

    def forward(self, x: Tensor) -> Tensor:
        f = self.post(self.features(self.body(self.stem(x))))
        return self.head(f.mean(dim=(2, 3)))


class SizeSensitive(nn.Module):
    """Class 1's logit grows with the input area (sum pooling), class 0's does not (mean pooling):
    small inputs pick class 0, large inputs class 1 — a model on which the keep rule must drop scales."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.features = nn.Sequential(nn.Conv2d(6, 6, 3, stride=2, padding=1), nn.Softplus())

    def forward(self, x: Tensor) -> Tensor:
        f = self.features(torch.tanh(self.conv(x)))
        mean_score = 4.0 + f[:, :3].mean(dim=(1, 2, 3))
        sum_score = f[:, 3:].sum(dim=(1, 2, 3)) / 150.0
        return torch.stack([mean_score, sum_score], dim=1)


class Shared(nn.Module):
    """Uses one ReLU module twice: tapping 'act' must fail loudly."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.unused = nn.Conv2d(4, 4, 1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.act(self.c2(self.act(self.c1(x)))).mean(dim=(2, 3)))
