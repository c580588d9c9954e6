"""pytorch-fid's Inception-v3 (the TF FID network) built locally: never a download attempt.

`pytorch_fid.inception.fid_inception_v3` always fetches its weights from a URL, so the same
architecture is assembled here from torchvision's Inception3 and pytorch-fid's patched
blocks, and its weights come from a local `pt_inception-2015-12-05-6726825d.pth`.
"""

from __future__ import annotations

import os

import torch
import torchvision
from pytorch_fid.inception import FIDInceptionA, FIDInceptionC, FIDInceptionE_1, FIDInceptionE_2
from torch import nn
from torch.nn import functional as F

from sgvideo.metrics.weights import FID_INCEPTION


def fid_inception_architecture() -> torchvision.models.Inception3:
    """The FID Inception-v3 with untrained weights; its state-dict keys match the .pth file."""
    net = torchvision.models.inception_v3(
        weights=None, aux_logits=False, init_weights=False, num_classes=1008
    )
    net.Mixed_5b = FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = FIDInceptionE_1(1280)
    net.Mixed_7c = FIDInceptionE_2(2048)
    return net


class FIDInceptionV3(nn.Module):
    """ "b 3 h w" images in [-1, 1], any size -> "b dims" features, as pytorch-fid computes them.

    Like pytorch-fid's InceptionV3 (resize_input, normalize_input): the [0, 1] image is resized
    to 299x299 bilinearly (align_corners=False), then mapped to [-1, 1]. `dims` picks the block
    as pytorch-fid's `--dims` does: 2048 (final average pool, the FID standard), or 64 / 192 /
    768 (earlier blocks, spatially averaged).
    """

    BLOCK_END = {64: 4, 192: 7, 768: 15, 2048: 18}  # layers up to each pytorch-fid block

    def __init__(self, state_dict: dict[str, torch.Tensor] | None = None, dims: int = 2048) -> None:
        super().__init__()
        if dims not in self.BLOCK_END:
            raise ValueError(f"dims must be one of {sorted(self.BLOCK_END)}, got {dims}")
        self.num_features = dims
        net = fid_inception_architecture()
        if state_dict is not None:
            net.load_state_dict(state_dict)
        layers = [
            net.Conv2d_1a_3x3,
            net.Conv2d_2a_3x3,
            net.Conv2d_2b_3x3,
            nn.MaxPool2d(kernel_size=3, stride=2),
            net.Conv2d_3b_1x1,
            net.Conv2d_4a_3x3,
            nn.MaxPool2d(kernel_size=3, stride=2),
            net.Mixed_5b,
            net.Mixed_5c,
            net.Mixed_5d,
            net.Mixed_6a,
            net.Mixed_6b,
            net.Mixed_6c,
            net.Mixed_6d,
            net.Mixed_6e,
            net.Mixed_7a,
            net.Mixed_7b,
            net.Mixed_7c,
        ]
        self.layers = nn.Sequential(*layers[: self.BLOCK_END[dims]], nn.AdaptiveAvgPool2d(1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = (images.float() + 1) / 2
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return self.layers(2 * x - 1).flatten(1)


def load_fid_inception(path: str | os.PathLike | None = None, dims: int = 2048) -> FIDInceptionV3:
    """The FID network with the real weights (path, $SGVIDEO_FID_WEIGHTS or pretrained/...)."""
    file = FID_INCEPTION.resolve(path)
    state = torch.load(file, map_location="cpu", weights_only=True)
    return FIDInceptionV3(state, dims).eval()
