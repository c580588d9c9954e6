"""The Kinetics-400 I3D in the TorchScript form StyleGAN-V's FVD uses, called as it calls it."""

from __future__ import annotations

import os

import torch
from torch import nn

from sgvideo.metrics.weights import I3D_TORCHSCRIPT
from sgvideo.pixels import to_uint8


class I3DFeatures(nn.Module):
    """ "b 3 t h w" videos in [-1, 1] -> "b 400" I3D features (the logits before the softmax).

    As StyleGAN-V (src/metrics/frechet_video_distance.py + metric_utils.py): frames are
    quantised to uint8 like its generated frames, then the TorchScript is called with
    `rescale=True` (uint8 [0, 255] -> [-1, 1] inside the network), `resize=True` (frames resized
    to 224x224 inside the network) and `return_features=True`.
    """

    num_features = 400

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.path = I3D_TORCHSCRIPT.resolve(path)
        self.net = torch.jit.load(str(self.path), map_location="cpu").eval()

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        return self.net(to_uint8(videos), rescale=True, resize=True, return_features=True)
