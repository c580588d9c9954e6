"""Native PyTorch ops: built from differentiable torch ops only, so every derivative order works.

upfirdn2d is one depthwise conv2d (up=1) or conv_transpose2d (up>1), with as much of the
padding/cropping as possible folded into the convolution's own `padding` argument; this is
several times faster on CPU than rosinality's reshape-to-one-channel formulation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .shapes import Pad4


def _pad_or_crop(x: torch.Tensor, x0: int, x1: int, y0: int, y1: int) -> torch.Tensor:
    """Zero-pad positive amounts, then crop negative ones (rosinality's order), on "b c h w"."""
    if max(x0, x1, y0, y1) > 0:
        x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    if min(x0, x1, y0, y1) < 0:
        h, w = x.shape[2], x.shape[3]
        x = x[:, :, max(-y0, 0) : h - max(-y1, 0), max(-x0, 0) : w - max(-x1, 0)]
    return x


def _shared(a: int, b: int) -> int:
    """Amount both ends have in common (>= 0), so it can go into a conv's symmetric padding."""
    return max(min(a, b), 0)


def upfirdn2d_native(
    x: torch.Tensor, kernel: torch.Tensor, up: int, down: int, pad: Pad4
) -> torch.Tensor:
    """x "b c h w"; kernel (kh, kw), same dtype as x; pad (x0, x1, y0, y1); args pre-checked."""
    x0, x1, y0, y1 = pad
    channels = x.shape[1]
    kh, kw = kernel.shape
    if up == 1:
        sy, sx = _shared(y0, y1), _shared(x0, x1)
        x = _pad_or_crop(x, x0 - sx, x1 - sx, y0 - sy, y1 - sy)
        weight = kernel.flip(0, 1).expand(channels, 1, kh, kw)
        return F.conv2d(x, weight, stride=down, padding=(sy, sx), groups=channels)
    # conv_transpose2d with stride `up` is zero insertion followed by the full true convolution
    # (length (n - 1) * up + k); the output wants that signal shifted by k - 1 - pad0 and cut
    # to n * up + pad0 + pad1 - k + 1 samples: a crop/pad of (pad0 - k + 1, pad1 + up - k).
    ly, ry = y0 - kh + 1, y1 + up - kh
    lx, rx = x0 - kw + 1, x1 + up - kw
    cy, cx = _shared(-ly, -ry), _shared(-lx, -rx)
    x = F.conv_transpose2d(
        x, kernel.expand(channels, 1, kh, kw), stride=up, padding=(cy, cx), groups=channels
    )
    x = _pad_or_crop(x, lx + cx, rx + cx, ly + cy, ry + cy)
    return x[:, :, ::down, ::down] if down > 1 else x


def fused_leaky_relu_native(
    x: torch.Tensor, bias: torch.Tensor | None, negative_slope: float, scale: float
) -> torch.Tensor:
    """leaky_relu(x + bias, negative_slope) * scale with bias over dim 1; bias has x's dtype."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    if scale > 0 and negative_slope >= 0:
        # lrelu(z) * s == lrelu(z * s) for s > 0: one fused add-and-scale and an in-place
        # activation make two passes over memory instead of three.
        z = x * scale if bias is None else torch.add((bias * scale).view(shape), x, alpha=scale)
        return F.leaky_relu_(z, negative_slope)
    z = x if bias is None else x + bias.view(shape)
    return F.leaky_relu(z, negative_slope) * scale
