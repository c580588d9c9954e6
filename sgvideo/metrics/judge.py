"""The frame judge: a small classifier that names the category a frame shows.

Fitted only on real frames of the dataset's training split (which no training stage reads for
this purpose), it labels generated frames so that category accuracy can say whether a video
shows what its sound is. It has to be cheap (seconds on two CPU cores, at 32 or 256 px), so it
is a multinomial logistic regression on simple features: an 8x8 colour thumbnail and each
colour channel's spatial standard deviation, standardised with the training frames' statistics.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sgvideo.files import atomic_path

THUMBNAIL = 8  # frames are judged on a THUMBNAIL x THUMBNAIL colour thumbnail (+ channel spread)
NUM_FEATURES = 3 * THUMBNAIL * THUMBNAIL + 3
DESCRIPTION = (
    f"multinomial logistic regression on a {THUMBNAIL}x{THUMBNAIL} colour thumbnail and each "
    "channel's spatial std, standardised"
)


def judge_features(frames: Tensor) -> Tensor:
    """Frames "n 3 h w" in [-1, 1], any size -> features "n NUM_FEATURES" (float32)."""
    if frames.dim() != 4 or frames.shape[1] != 3:
        raise ValueError(f"the frame judge expects frames 'n 3 h w', got {tuple(frames.shape)}")
    x = frames.float()
    thumbnail = F.adaptive_avg_pool2d(x, THUMBNAIL).flatten(1)
    spread = x.flatten(2).std(dim=2, correction=0)
    return torch.cat([thumbnail, spread], dim=1)


class FrameJudge(nn.Module):
    """Frames "n 3 h w" in [-1, 1] -> category logits "n k" (k = len(categories)).

    `image_size` is the size of the frames it was fitted on: callers centre-crop and resize
    frames to it (`sgvideo.metrics.sources.model_frames`) so that they are judged alike.
    """

    def __init__(self, categories: Sequence[str], image_size: int) -> None:
        super().__init__()
        if len(categories) < 2:
            raise ValueError(f"a frame judge needs at least 2 categories, got {list(categories)}")
        self.categories = list(categories)
        self.image_size = int(image_size)
        self.register_buffer("mean", torch.zeros(NUM_FEATURES))
        self.register_buffer("scale", torch.ones(NUM_FEATURES))
        self.linear = nn.Linear(NUM_FEATURES, len(self.categories))

    def forward(self, frames: Tensor) -> Tensor:
        return self.linear((judge_features(frames) - self.mean) / self.scale)

    @torch.no_grad()
    def predict(self, frames: Tensor) -> Tensor:
        """The category index of each frame: "n" long."""
        return self(frames).argmax(dim=1)

    def label(self, category: str) -> int | None:
        """The index of `category`, None if the judge does not know it."""
        return self.categories.index(category) if category in self.categories else None

    @classmethod
    def fit(
        cls,
        frames: Tensor,
        labels: Tensor,
        categories: Sequence[str],
        image_size: int,
        weight_decay: float = 1e-3,
        steps: int = 100,
    ) -> FrameJudge:
        """Fit on frames "n 3 h w" in [-1, 1] with labels "n" (indices into `categories`):
        cross-entropy + weight_decay * ||W||^2, full-batch L-BFGS (deterministic)."""
        if len(frames) != len(labels) or len(frames) == 0:
            raise ValueError(
                f"the frame judge needs frames and labels of one nonzero length, got "
                f"{len(frames)} and {len(labels)}"
            )
        judge = cls(categories, image_size)
        features = judge_features(frames)
        judge.mean.copy_(features.mean(dim=0))
        judge.scale.copy_(features.std(dim=0, correction=0).clamp(min=1e-6))
        x = (features - judge.mean) / judge.scale
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            nn.init.zeros_(judge.linear.weight)
            nn.init.zeros_(judge.linear.bias)
        optimizer = torch.optim.LBFGS(
            judge.linear.parameters(), max_iter=steps, line_search_fn="strong_wolfe"
        )

        def loss() -> Tensor:
            optimizer.zero_grad()
            value = F.cross_entropy(judge.linear(x), labels)
            value = value + weight_decay * judge.linear.weight.square().sum()
            value.backward()
            return value

        optimizer.step(loss)
        return judge.eval().requires_grad_(False)

    def save(self, path: str | os.PathLike, info: dict[str, Any]) -> Path:
        """Write the judge and what it was fitted on (`info`) to `path`, atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "categories": self.categories,
            "image_size": self.image_size,
            "state_dict": self.state_dict(),
            "info": info,
        }
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> tuple[FrameJudge, dict[str, Any]]:
        """A saved judge and its `info`."""
        payload = torch.load(path, map_location="cpu", weights_only=True)
        judge = cls(payload["categories"], payload["image_size"])
        judge.load_state_dict(payload["state_dict"])
        return judge.eval().requires_grad_(False), payload["info"]
