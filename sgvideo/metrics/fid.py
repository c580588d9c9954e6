"""Fréchet Inception Distance with pytorch-fid's network and statistics."""

from __future__ import annotations

import os

import torch
from torch import nn

from sgvideo.metrics.frechet import FrechetFeatureMetric, count_features
from sgvideo.metrics.inception import load_fid_inception


class FID(FrechetFeatureMetric):
    """FID between real and generated images: `update(images "b 3 h w" in [-1, 1], real)`.

    Default network: pytorch-fid's Inception-v3 pool-3 (2048-d) with the weights from
    `weights_path` (or $SGVIDEO_FID_WEIGHTS, or pretrained/pt_inception-2015-12-05-6726825d.pth).
    `dims` picks an earlier block like pytorch-fid's --dims (64, 192, 768; 2048 is FID).
    `feature_extractor` (an nn.Module: images -> "b d") replaces the network, e.g. in tests.
    Covariances are unbiased (n - 1) like pytorch-fid's np.cov.
    """

    def __init__(
        self,
        weights_path: str | os.PathLike | None = None,
        feature_extractor: nn.Module | None = None,
        dims: int = 2048,
        **kwargs,
    ) -> None:
        if feature_extractor is not None and weights_path is not None:
            raise ValueError("FID: give weights_path or feature_extractor, not both")
        extractor = feature_extractor or load_fid_inception(weights_path, dims)
        num = count_features(extractor, torch.zeros(2, 3, 32, 32))
        super().__init__(extractor, num, unbiased=True, **kwargs)

    def update(self, images: torch.Tensor, real: bool) -> None:
        if images.dim() != 4 or images.shape[1] != 3 or not images.is_floating_point():
            raise ValueError(
                f"FID expects float images 'b 3 h w' in [-1, 1], got {images.dtype} "
                f"{tuple(images.shape)}"
            )
        with torch.no_grad():
            self._add_features(self.feature_extractor(images), real)
