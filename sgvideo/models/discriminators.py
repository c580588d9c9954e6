"""Stage-2 discriminators: one judges single frames, one judges whole clips.

Both follow the authors' training script: strided convolutions with instance normalisation and
LeakyReLU(0.2), raw logits for least-squares GAN losses. They halve the resolution down to 4x4,
so any power-of-two size >= 32 works.
"""

from __future__ import annotations

import math

from einops import rearrange
from torch import Tensor, nn


def _check_size(size: int) -> int:
    """Number of halvings from `size` down to 4x4."""
    if size < 32 or size & (size - 1):
        raise ValueError(f"discriminator size must be a power of two >= 32, got {size}")
    return int(math.log2(size)) - 2


def _widths(channels: int, max_channels: int, count: int) -> list[int]:
    return [min(channels * 2**i, max_channels) for i in range(count)]


def _check_frames(x: Tensor, size: int, pattern: str, channel_dim: int) -> None:
    if (
        x.ndim != len(pattern.split())
        or x.shape[channel_dim] != 3
        or tuple(x.shape[-2:]) != (size, size)
    ):
        raise ValueError(f"expected {pattern!r} RGB input at {size}x{size}, got {tuple(x.shape)}")


class ImageDiscriminator(nn.Module):
    """Frames "b 3 h w" -> one logit per frame "b" (4x4 stride-2 convs, instance norm)."""

    def __init__(self, size: int, channels: int = 64, max_channels: int = 512) -> None:
        super().__init__()
        self.size = size
        widths = _widths(channels, max_channels, _check_size(size))
        layers: list[nn.Module] = []
        in_ch = 3
        for i, out_ch in enumerate(widths):
            layers.append(nn.Conv2d(in_ch, out_ch, 4, 2, 1, bias=i == 0))
            if i > 0:
                layers.append(nn.InstanceNorm2d(out_ch))
            layers.append(nn.LeakyReLU(0.2))
            in_ch = out_ch
        layers.append(nn.Conv2d(in_ch, 1, 4, 1, 0))
        self.net = nn.Sequential(*layers)

    def forward(self, frames: Tensor) -> Tensor:
        _check_frames(frames, self.size, "b 3 h w", channel_dim=1)
        return rearrange(self.net(frames), "b 1 1 1 -> b")


class VideoDiscriminator(nn.Module):
    """Clips "b 3 t h w" -> logits "b t".

    The body keeps the time axis, as the authors' does: (1, 3, 3) kernels with (1, 2, 2)
    strides. Their version never mixed frames; our head does, with a (3, 3, 3) convolution
    at 4x4 before the per-step output, so motion is judged too. Any T >= 1 works.
    """

    def __init__(self, size: int, channels: int = 32, max_channels: int = 256) -> None:
        super().__init__()
        self.size = size
        widths = _widths(channels, max_channels, _check_size(size))
        layers: list[nn.Module] = []
        in_ch = 3
        for i, out_ch in enumerate(widths):
            layers.append(nn.Conv3d(in_ch, out_ch, (1, 3, 3), (1, 2, 2), (0, 1, 1)))
            if i > 0:
                layers.append(nn.InstanceNorm3d(out_ch))
            layers.append(nn.LeakyReLU(0.2))
            in_ch = out_ch
        layers += [
            nn.Conv3d(in_ch, in_ch, 3, 1, 1),
            nn.LeakyReLU(0.2),
            nn.Conv3d(in_ch, 1, (1, 4, 4)),
        ]
        self.net = nn.Sequential(*layers)

    def forward(self, clips: Tensor) -> Tensor:
        _check_frames(clips, self.size, "b 3 t h w", channel_dim=1)
        return rearrange(self.net(clips), "b 1 t 1 1 -> b t")
