"""Slow, literal definitions of the ops: the yardstick for tests and benchmarks.

upfirdn2d is spelled out step by step, exactly as its name says: insert up - 1 zeros after every
sample, zero-pad (negative pads crop), convolve each channel on its own with the kernel (a true
convolution: conv2d correlates, so the kernel is flipped) with stride `down`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

from .shapes import Pad4


def upfirdn2d_reference(
    x: torch.Tensor, kernel: torch.Tensor, up: int, down: int, pad: Pad4
) -> torch.Tensor:
    """x "b c h w", kernel (kh, kw), pad (x0, x1, y0, y1) -> "b c oh ow"."""
    x0, x1, y0, y1 = pad
    b, c, h, w = x.shape
    upsampled = x.new_zeros(b, c, h * up, w * up)
    upsampled[:, :, ::up, ::up] = x
    padded = F.pad(upsampled, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    ph, pw = padded.shape[2:]
    padded = padded[:, :, max(-y0, 0) : ph - max(-y1, 0), max(-x0, 0) : pw - max(-x1, 0)]
    planes = rearrange(padded, "b c h w -> (b c) 1 h w")
    filtered = F.conv2d(planes, kernel.flip(0, 1)[None, None].to(x.dtype), stride=down)
    return rearrange(filtered, "(b c) 1 h w -> b c h w", b=b)


def fused_leaky_relu_reference(
    x: torch.Tensor, bias: torch.Tensor | None, negative_slope: float, scale: float
) -> torch.Tensor:
    """leaky_relu(x + bias over dim 1) * scale."""
    if bias is not None:
        x = x + bias.reshape([1, -1] + [1] * (x.ndim - 2))
    return torch.where(x > 0, x, x * negative_slope) * scale
