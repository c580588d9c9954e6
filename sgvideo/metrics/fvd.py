"""Fréchet Video Distance, StyleGAN-V protocol."""

from __future__ import annotations

import os

import torch
from einops import rearrange
from torch import nn

from sgvideo.metrics.frechet import FrechetFeatureMetric, count_features
from sgvideo.metrics.i3d import I3DFeatures


class FVD(FrechetFeatureMetric):
    """FVD between real and generated clips: `update(videos "b t 3 h w" in [-1, 1], real)`.

    Default network: StyleGAN-V's I3D TorchScript from `weights_path` (or $SGVIDEO_I3D_WEIGHTS,
    or pretrained/i3d_torchscript.pt). A `feature_extractor` (nn.Module: "b 3 t h w" videos in
    [-1, 1] -> "b d") replaces it. Every clip must have exactly `num_frames` frames (StyleGAN-V:
    16). Covariances divide by n like StyleGAN-V's FeatureStats; the distance is float64.
    """

    def __init__(
        self,
        weights_path: str | os.PathLike | None = None,
        feature_extractor: nn.Module | None = None,
        num_frames: int = 16,
        **kwargs,
    ) -> None:
        if feature_extractor is not None and weights_path is not None:
            raise ValueError("FVD: give weights_path or feature_extractor, not both")
        if num_frames < 1:
            raise ValueError(f"FVD: num_frames must be at least 1, got {num_frames}")
        extractor = feature_extractor or I3DFeatures(weights_path)
        num = count_features(extractor, torch.zeros(2, 3, num_frames, 32, 32))
        super().__init__(extractor, num, unbiased=False, **kwargs)
        self.num_frames = num_frames

    def update(self, videos: torch.Tensor, real: bool) -> None:
        if videos.dim() != 5 or videos.shape[2] != 3 or not videos.is_floating_point():
            raise ValueError(
                f"FVD expects float videos 'b t 3 h w' in [-1, 1], got {videos.dtype} "
                f"{tuple(videos.shape)}"
            )
        if videos.shape[1] != self.num_frames:
            raise ValueError(
                f"FVD was set up for {self.num_frames}-frame clips, got {videos.shape[1]} frames"
            )
        with torch.no_grad():
            features = self.feature_extractor(rearrange(videos, "b t c h w -> b c t h w"))
            self._add_features(features, real)
