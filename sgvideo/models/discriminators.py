"""Stage-2 discriminators: one judges single frames, one judges whole clips.

Both follow the authors' training script: strided convolutions with instance normalisation and
LeakyReLU(0.2), raw logits for least-squares GAN losses. They halve the resolution down to 4x4,
so any power-of-two size >= 32 works.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from einops import rearrange
from torch import Tensor, nn


def _check_size(size: int) -> int:
    """Number of halvings from `size` down to 4x4."""
    if size < 32 or size & (size - 1):
        raise ValueError(f"discriminator size must be a power of two >= 32, got {size}")
    return int(math.log2(size)) - 2


def _halving_layers(
    size: int, channels: int, max_channels: int, conv: Callable[..., nn.Module], norm: type
) -> tuple[list[nn.Module], int]:
    """From RGB down to 4x4: `conv(in, out, first)` (each halves the resolution), `norm` after
    all but the first, LeakyReLU(0.2); channels double from `channels` up to `max_channels`.
    Returns the layers and the last width."""
    layers: list[nn.Module] = []
    in_ch = 3
    for i in range(_check_size(size)):
        out_ch = min(channels * 2**i, max_channels)
        layers.append(conv(in_ch, out_ch, i == 0))
        if i > 0:
            layers.append(norm(out_ch))
        layers.append(nn.LeakyReLU(0.2))
        in_ch = out_ch
    return layers, in_ch


def _image_conv(c_in: int, c_out: int, first: bool) -> nn.Module:
    """4x4 stride 2; a bias only in the first (the others are instance-normalised)."""
    return nn.Conv2d(c_in, c_out, 4, 2, 1, bias=first)


def _frame_by_frame_conv(c_in: int, c_out: int, first: bool) -> nn.Module:
    """(1, 3, 3) kernels, (1, 2, 2) strides: each frame alone, the time axis kept."""
    return nn.Conv3d(c_in, c_out, (1, 3, 3), (1, 2, 2), (0, 1, 1))


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
        conv = _image_conv
        layers, in_ch = _halving_layers(size, channels, max_channels, conv, nn.InstanceNorm2d)
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
        conv = _frame_by_frame_conv
        layers, in_ch = _halving_layers(size, channels, max_channels, conv, nn.InstanceNorm3d)
        layers += [
            nn.Conv3d(in_ch, in_ch, 3, 1, 1),
            nn.LeakyReLU(0.2),
            nn.Conv3d(in_ch, 1, (1, 4, 4)),
        ]
        self.net = nn.Sequential(*layers)

    def forward(self, clips: Tensor) -> Tensor:
        _check_frames(clips, self.size, "b 3 t h w", channel_dim=1)
        return rearrange(self.net(clips), "b 1 t 1 1 -> b t")
