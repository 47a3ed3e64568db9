"""Tiny models for attack tests: a linear classifier (closed-form minimal perturbations) and a small random CNN."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Linear(nn.Module):
    """logits = W · flatten(x) + b; minimal perturbations have closed forms."""

    def __init__(self, shape: tuple[int, int, int] = (3, 8, 8), classes: int = 2, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.fc = nn.Linear(shape[0] * shape[1] * shape[2], classes)
        self.eval()

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(x.flatten(1))


class SmallCNN(nn.Module):
    """conv-relu → conv-relu ('features') → global average pool → linear."""

    def __init__(self, classes: int = 5, width: int = 8, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU())
        self.features = nn.Sequential(nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Linear(width, classes)
        self.eval()

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(self.stem(x)).mean(dim=(2, 3)))


def margin_and_direction(net: Linear, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """For a 2-class linear model: the logit margin z_y − z_other (B,) and w_y − w_other (B, C, H, W)."""
    w, b = net.fc.weight.detach(), net.fc.bias.detach()
    other = 1 - y
    diff = w[y] - w[other]
    margin = (x.flatten(1) * diff).sum(1) + b[y] - b[other]
    return margin, diff.view_as(x)
