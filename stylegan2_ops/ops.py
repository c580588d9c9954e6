"""Public ops: argument checks, then the native or compiled implementation (see backend)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from . import cuda, native
from .backend import backend_for
from .shapes import check_upfirdn2d_args


def upfirdn2d(
    x: torch.Tensor,
    kernel: torch.Tensor,
    up: int = 1,
    down: int = 1,
    pad: Sequence[int] = (0, 0),
) -> torch.Tensor:
    """Upsample by zero insertion, pad, convolve each channel with `kernel`, downsample.

    Same result as rosinality's `upfirdn2d_native` (a true convolution: the kernel is flipped
    for conv2d). x "b c h w"; kernel (kh, kw); pad (p0, p1) for both axes or (x0, x1, y0, y1),
    negative values crop. Returns "b c oh ow" with oh = (h * up + y0 + y1 - kh) // down + 1.
    A kernel that requires grad always takes the native path (the CUDA op has no kernel grad).
    """
    up, down, pad4 = check_upfirdn2d_args(x, kernel, up, down, pad)
    kernel = kernel.to(device=x.device, dtype=x.dtype)
    if backend_for(x) == "cuda" and not kernel.requires_grad:
        return cuda.upfirdn2d_cuda(x, kernel, up, down, pad4)
    return native.upfirdn2d_native(x, kernel, up, down, pad4)


def fused_leaky_relu(
    x: torch.Tensor,
    bias: torch.Tensor | None = None,
    negative_slope: float = 0.2,
    scale: float = 2**0.5,
) -> torch.Tensor:
    """leaky_relu(x + bias, negative_slope) * scale; bias (c,) broadcast over dim 1 of x, or None.

    The CUDA kernel covers scale > 0 and negative_slope >= 0 (StyleGAN2 uses 0.2, sqrt 2);
    other values take the native path.
    """
    if bias is not None:
        if x.ndim < 2 or bias.ndim != 1 or bias.shape[0] != x.shape[1]:
            raise ValueError(
                f"fused_leaky_relu: bias must have shape (x.shape[1],), got {tuple(bias.shape)} "
                f"for x of shape {tuple(x.shape)}"
            )
        bias = bias.to(x.dtype)
    if backend_for(x) == "cuda" and scale > 0 and negative_slope >= 0:
        return cuda.fused_leaky_relu_cuda(x, bias, negative_slope, scale)
    return native.fused_leaky_relu_native(x, bias, negative_slope, scale)


class FusedLeakyReLU(nn.Module):
    """Learned per-channel bias + leaky ReLU + scale; state dict key `bias` as in rosinality."""

    def __init__(
        self,
        channels: int,
        bias: bool = True,
        negative_slope: float = 0.2,
        scale: float = 2**0.5,
    ) -> None:
        super().__init__()
        if bias:
            self.bias = nn.Parameter(torch.zeros(channels))
        else:
            self.register_parameter("bias", None)
        self.channels = channels
        self.negative_slope = negative_slope
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias, self.negative_slope, self.scale)

    def extra_repr(self) -> str:
        return (
            f"{self.channels}, bias={self.bias is not None}, "
            f"negative_slope={self.negative_slope}, scale={self.scale:.4g}"
        )
