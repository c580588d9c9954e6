"""Tiny random, seeded feature networks for tests and the CPU demo.

They make FID/FVD-shaped numbers without the real weight files. Those numbers compare runs of
the same tiny network only; they are not FID or FVD and not comparable with published values.
"""

from __future__ import annotations

import torch
from torch import nn


def _seeded(build, seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build().eval().requires_grad_(False)


class TinyImageFeatures(nn.Module):
    """ "b 3 h w" in [-1, 1], any size -> "b num_features"."""

    def __init__(self, num_features: int = 32, seed: int = 0) -> None:
        super().__init__()
        self.num_features = num_features
        self.net = _seeded(
            lambda: nn.Sequential(
                nn.Conv2d(3, 16, 3, stride=2, padding=1),
                nn.ReLU(),
                nn.Conv2d(16, 32, 3, stride=2, padding=1),
                nn.ReLU(),
                nn.AdaptiveAvgPool2d(4),
                nn.Flatten(),
                nn.Linear(32 * 16, num_features),
            ),
            seed,
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images.float())


class TinyVideoFeatures(nn.Module):
    """ "b 3 t h w" in [-1, 1], any size and length -> "b num_features" (a small 3-D CNN)."""

    def __init__(self, num_features: int = 32, seed: int = 0) -> None:
        super().__init__()
        self.num_features = num_features
        self.net = _seeded(
            lambda: nn.Sequential(
                nn.Conv3d(3, 16, 3, stride=(1, 2, 2), padding=1),
                nn.ReLU(),
                nn.Conv3d(16, 32, 3, stride=2, padding=1),
                nn.ReLU(),
                nn.AdaptiveAvgPool3d((2, 4, 4)),
                nn.Flatten(),
                nn.Linear(32 * 32, num_features),
            ),
            seed,
        )

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        return self.net(videos.float())
