"""Argument checks and size arithmetic of upfirdn2d, shared by the native and CUDA paths."""

from __future__ import annotations

import operator
from collections.abc import Sequence

import torch

Pad4 = tuple[int, int, int, int]


def _as_int(value: object, what: str) -> int:
    if isinstance(value, bool):
        raise TypeError(f"upfirdn2d: {what} must be an int, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"upfirdn2d: {what} must be an int, got {value!r}") from None


def parse_pad(pad: Sequence[int]) -> Pad4:
    """(p0, p1) for both axes, or rosinality's (x0, x1, y0, y1); negative values crop."""
    values = tuple(pad) if isinstance(pad, Sequence) else ()
    if len(values) not in (2, 4):
        raise ValueError(f"upfirdn2d: pad must be (p0, p1) or (x0, x1, y0, y1), got {pad!r}")
    x0, x1, *rest = (_as_int(v, "pad") for v in values)
    y0, y1 = rest or (x0, x1)
    return x0, x1, y0, y1


def output_size(size: int, kernel_size: int, up: int, down: int, pad0: int, pad1: int) -> int:
    """Length along one axis after upsampling, padding, the valid convolution and striding."""
    return (size * up + pad0 + pad1 - kernel_size) // down + 1


def adjoint_pad(
    in_size: int, out_size: int, kernel_size: int, up: int, down: int, pad0: int
) -> tuple[int, int]:
    """Pads for which upfirdn2d(grad, flipped kernel, up=down, down=up) is the transpose."""
    return kernel_size - pad0 - 1, in_size * up - out_size * down + pad0 - up + 1


def check_upfirdn2d_args(
    x: torch.Tensor, kernel: torch.Tensor, up: int, down: int, pad: Sequence[int]
) -> tuple[int, int, Pad4]:
    """Validated (up, down, (x0, x1, y0, y1)); raises ValueError/TypeError naming the problem."""
    if x.ndim != 4:
        raise ValueError(f"upfirdn2d: x must be 4-D 'b c h w', got shape {tuple(x.shape)}")
    if kernel.ndim != 2:
        raise ValueError(f"upfirdn2d: kernel must be 2-D, got shape {tuple(kernel.shape)}")
    up, down = _as_int(up, "up"), _as_int(down, "down")
    if up < 1 or down < 1:
        raise ValueError(f"upfirdn2d: up and down must be >= 1, got up={up}, down={down}")
    x0, x1, y0, y1 = parse_pad(pad)
    kh, kw = kernel.shape
    out_h = output_size(x.shape[2], kh, up, down, y0, y1)
    out_w = output_size(x.shape[3], kw, up, down, x0, x1)
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"upfirdn2d: empty output ({out_h}x{out_w}) for input {x.shape[2]}x{x.shape[3]}, "
            f"kernel {kh}x{kw}, up={up}, down={down}, pad={(x0, x1, y0, y1)}"
        )
    return up, down, (x0, x1, y0, y1)
