"""Autograd glue of the compiled kernels; every backward is itself differentiable.

upfirdn2d's gradient is upfirdn2d with the flipped kernel and up/down swapped (the same Function,
so derivatives of any order follow). The leaky ReLU's gradient is the same kernel with the sign
test read from the saved output; it is linear in the incoming gradient and its own transpose,
and the bias gradient is a plain (differentiable) sum of it.
"""

from __future__ import annotations

import torch
from torch.autograd import Function

from . import backend
from .shapes import Pad4, adjoint_pad


class _UpFirDn2d(Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, kernel: torch.Tensor, up: int, down: int, pad: Pad4):
        x0, x1, y0, y1 = pad
        ctx.save_for_backward(kernel)
        ctx.geometry = (x.shape[2], x.shape[3], up, down, x0, y0)
        return backend.extension().upfirdn2d(x, kernel, up, down, x0, x1, y0, y1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (kernel,) = ctx.saved_tensors
        in_h, in_w, up, down, x0, y0 = ctx.geometry
        kh, kw = kernel.shape
        gx = adjoint_pad(in_w, grad.shape[3], kw, up, down, x0)
        gy = adjoint_pad(in_h, grad.shape[2], kh, up, down, y0)
        grad_x = _UpFirDn2d.apply(grad, kernel.flip(0, 1), down, up, (*gx, *gy))
        return grad_x, None, None, None, None


def upfirdn2d_cuda(
    x: torch.Tensor, kernel: torch.Tensor, up: int, down: int, pad: Pad4
) -> torch.Tensor:
    """Same contract as native.upfirdn2d_native; no gradient flows to the kernel."""
    return _UpFirDn2d.apply(x, kernel, up, down, pad)


class _LeakyReLUGrad(Function):
    """grad * scale * (1 where out > 0 else negative_slope)."""

    @staticmethod
    def forward(ctx, grad: torch.Tensor, out: torch.Tensor, negative_slope: float, scale: float):
        ctx.save_for_backward(out)
        ctx.params = (negative_slope, scale)
        return backend.extension().bias_act(grad, grad.new_empty(0), out, negative_slope, scale)

    @staticmethod
    def backward(ctx, grad_grad: torch.Tensor):
        (out,) = ctx.saved_tensors
        return _LeakyReLUGrad.apply(grad_grad, out, *ctx.params), None, None, None


class _FusedLeakyReLU(Function):
    @staticmethod
    def forward(
        ctx, x: torch.Tensor, bias: torch.Tensor | None, negative_slope: float, scale: float
    ):
        bias = x.new_empty(0) if bias is None else bias
        out = backend.extension().bias_act(x, bias, x.new_empty(0), negative_slope, scale)
        ctx.save_for_backward(out)
        ctx.params = (negative_slope, scale)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (out,) = ctx.saved_tensors
        grad_x = _LeakyReLUGrad.apply(grad, out, *ctx.params)
        grad_bias = None
        if ctx.needs_input_grad[1]:
            grad_bias = grad_x.sum([d for d in range(grad_x.ndim) if d != 1])
        return grad_x, grad_bias, None, None


def fused_leaky_relu_cuda(
    x: torch.Tensor, bias: torch.Tensor | None, negative_slope: float, scale: float
) -> torch.Tensor:
    """Same contract as native.fused_leaky_relu_native, for scale > 0 and negative_slope >= 0
    (the backward reads the sign of the pre-activation off the saved output)."""
    return _FusedLeakyReLU.apply(x, bias, negative_slope, scale)
