"""StyleGAN2's building blocks, named as in the paper and in rosinality's `model.py`.

Parameter names and arithmetic follow rosinality, so `sgvideo.models.stylegan2`'s networks built
from these blocks load its checkpoints with `strict=True`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from stylegan2_ops import FusedLeakyReLU, fused_leaky_relu, upfirdn2d

BLUR_KERNEL = (1, 3, 3, 1)


def make_kernel(taps: tuple[int, ...]) -> Tensor:
    """Separable FIR taps -> normalised 2-D kernel "k k"."""
    k = torch.tensor(taps, dtype=torch.float32)
    k = k[None, :] * k[:, None]
    return k / k.sum()


def full_precision(like: Tensor) -> torch.autocast:
    """Suspend autocast: styles, demodulation and RGB stay in the parameters' precision."""
    return torch.autocast(like.device.type, enabled=False)


def scale_add(out: Tensor, scale: Tensor | None, add: Tensor | None) -> Tensor:
    """out * scale + add (either may be None) in one pass over `out`, in its dtype.

    Without gradient recording the result overwrites `out` (a fresh activation owned by the
    caller): no new allocation, which is measurably faster on CPU.
    """
    inplace = not torch.is_grad_enabled()
    if scale is None and add is None:
        return out
    if scale is None:
        return out.add_(add.to(out.dtype)) if inplace else out + add.to(out.dtype)
    scale = scale.to(out.dtype)
    if add is None:
        return out.mul_(scale) if inplace else out * scale
    return torch.addcmul(add.to(out.dtype), out, scale, out=out if inplace else None)


# ----------------------------------------------------------------------------- building blocks


class PixelNorm(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(torch.mean(x**2, dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate (weights scaled at run time, not at init)."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activation: bool = False,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        if self.activation:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), self.bias * self.lr_mul)
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class EqualConv2d(nn.Module):
    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channel, in_channel, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channel)) if bias else None
        self.scale = 1 / math.sqrt(in_channel * kernel_size**2)
        self.stride = stride
        self.padding = padding

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(
            x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding
        )


class Blur(nn.Module):
    """FIR low-pass filter (upfirdn2d without resampling) with a (pad0, pad1) border."""

    def __init__(self, pad: tuple[int, int], upsample_factor: int = 1) -> None:
        super().__init__()
        self.register_buffer("kernel", make_kernel(BLUR_KERNEL) * upsample_factor**2)
        self.pad = pad

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """2x upsampling by zero insertion + FIR filter (ToRGB skip path)."""

    def __init__(self, factor: int = 2) -> None:
        super().__init__()
        self.register_buffer("kernel", make_kernel(BLUR_KERNEL) * factor**2)
        p = len(BLUR_KERNEL) - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)
        self.factor = factor

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class ModulatedConv2d(nn.Module):
    """Style-modulated convolution with optional weight demodulation and 2x upsampling.

    Two mathematically equal forms (`mode`):
    - "fused": one grouped convolution with a per-sample weight; rosinality's form, op for op.
    - "nonfused": scale the input channels by the style, convolve with the shared weight, then
      multiply the output channels by the demodulation coefficients. One weight for the whole
      batch makes the convolution a few large GEMMs and keeps channels_last activations intact.
    - "auto": non-fused, except for a single image on a GPU. Non-fused is faster on the CPU at
      every batch size and on an H200 from batch 8 on (451 vs 374 images/s at 256 px); fused is
      faster there only at batch 1 (83 vs 78 images/s; bench/bench_synthesis.py).
    Upsampling is a stride-2 transposed convolution followed by a [1, 3, 3, 1] blur in both forms.
    `add` (the weighted noise of StyledConv) is added to the result in the same pass as the
    demodulation.
    """

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
    ) -> None:
        super().__init__()
        self.in_channel = in_channel
        self.out_channel = out_channel
        self.kernel_size = kernel_size
        self.upsample = upsample
        self.demodulate = demodulate
        self.scale = 1 / math.sqrt(in_channel * kernel_size**2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(
            torch.randn(1, out_channel, in_channel, kernel_size, kernel_size)
        )
        if upsample:
            p = (len(BLUR_KERNEL) - 2) - (kernel_size - 1)
            self.blur = Blur(pad=((p + 1) // 2 + 1, p // 2 + 1), upsample_factor=2)
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1)
        self.mode = "auto"

    def extra_repr(self) -> str:
        return (
            f"{self.in_channel}, {self.out_channel}, kernel_size={self.kernel_size}, "
            f"upsample={self.upsample}, demodulate={self.demodulate}, mode={self.mode}"
        )

    def uses_fused(self, x: Tensor) -> bool:
        if self.mode == "auto":
            return x.device.type != "cpu" and x.shape[0] == 1
        return self.mode == "fused"

    def forward(self, x: Tensor, w: Tensor, add: Tensor | None = None) -> Tensor:
        """x "b in h w", w "b style_dim", add broadcastable -> "b out h' w'" (h' = 2h if up)."""
        with full_precision(x):
            style = self.modulation(w)
        if self.uses_fused(x):
            return scale_add(self._fused(x, style), None, add)
        return self._nonfused(x, style, add)

    def _fused(self, x: Tensor, style: Tensor) -> Tensor:
        batch, _, height, width = x.shape
        weight = self.scale * self.weight * style.view(batch, 1, self.in_channel, 1, 1)
        if self.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8)
            weight = weight * demod.view(batch, self.out_channel, 1, 1, 1)
        if batch > 1:  # for one sample this no-op reshape would drop channels_last strides
            x = x.reshape(1, batch * self.in_channel, height, width)
        if self.upsample:
            weight = rearrange(weight, "b o i kh kw -> (b i) o kh kw")
            out = F.conv_transpose2d(x, weight, stride=2, groups=batch)
        else:
            weight = rearrange(weight, "b o i kh kw -> (b o) i kh kw")
            out = F.conv2d(x, weight, padding=self.padding, groups=batch)
        out = out.view(batch, self.out_channel, out.shape[-2], out.shape[-1])
        return self.blur(out) if self.upsample else out

    def _nonfused(self, x: Tensor, style: Tensor, add: Tensor | None) -> Tensor:
        weight = self.weight[0]
        # the equalised-lr scale rides on the style: one multiply of "b in", not of the weight
        style = self.scale * style
        x = x * style[:, :, None, None].to(x.dtype)
        if self.upsample:
            out = self.blur(F.conv_transpose2d(x, weight.transpose(0, 1), stride=2))
        else:
            out = F.conv2d(x, weight, padding=self.padding)
        if not self.demodulate:
            return scale_add(out, None, add)
        with full_precision(x):
            # sum over (in, kh, kw) of (weight * style)^2, without a per-sample weight
            energy = torch.linalg.vector_norm(weight, dim=(2, 3)).square()
            dcoefs = torch.rsqrt(style.square() @ energy.t() + 1e-8)
        return scale_add(out, dcoefs[:, :, None, None], add)


def iter_modulated_convs(module: nn.Module) -> Iterator[ModulatedConv2d]:
    """Every ModulatedConv2d inside `module` (for per-layer inspection or mode changes)."""
    return (m for m in module.modules() if isinstance(m, ModulatedConv2d))


class NoiseInjection(nn.Module):
    """Learned noise strength; returns the term StyledConv adds to its convolution's output."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, noise: Tensor) -> Tensor:
        return self.weight * noise


class ConstantInput(nn.Module):
    def __init__(self, channel: int, size: int = 4) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channel, size, size))

    def forward(self, batch: int) -> Tensor:
        return self.input.repeat(batch, 1, 1, 1)


class StyledConv(nn.Module):
    def __init__(
        self, in_channel: int, out_channel: int, style_dim: int, upsample: bool = False
    ) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channel, out_channel, 3, style_dim, upsample=upsample)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel)

    def forward(self, x: Tensor, w: Tensor, noise: Tensor | None) -> Tensor:
        out = self.conv(x, w, None if noise is None else self.noise(noise))
        return self.activate(out)


class ToRGB(nn.Module):
    """1x1 modulated conv to RGB (no demodulation) added to the upsampled previous RGB."""

    def __init__(self, in_channel: int, style_dim: int, upsample: bool = True) -> None:
        super().__init__()
        if upsample:
            self.upsample = Upsample()
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: Tensor, w: Tensor, skip: Tensor | None = None) -> Tensor:
        out = self.conv(x, w)
        with full_precision(out):  # the image is summed over resolutions in full precision
            out = out.to(self.bias.dtype) + self.bias
            if skip is not None:
                out = out + self.upsample(skip)
        return out


# ----------------------------------------------------------------------------- discriminator blocks


class ConvLayer(nn.Sequential):
    """[blur] -> equalised conv -> [bias + leaky ReLU]; stride-2 downsampling after the blur."""

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        downsample: bool = False,
        bias: bool = True,
        activate: bool = True,
    ) -> None:
        layers: list[nn.Module] = []
        if downsample:
            p = (len(BLUR_KERNEL) - 2) + (kernel_size - 1)
            layers.append(Blur(pad=((p + 1) // 2, p // 2)))
        layers.append(
            EqualConv2d(
                in_channel,
                out_channel,
                kernel_size,
                stride=2 if downsample else 1,
                padding=0 if downsample else kernel_size // 2,
                bias=bias and not activate,
            )
        )
        if activate:
            layers.append(FusedLeakyReLU(out_channel, bias=bias))
        super().__init__(*layers)


class ResBlock(nn.Module):
    def __init__(self, in_channel: int, out_channel: int) -> None:
        super().__init__()
        self.conv1 = ConvLayer(in_channel, in_channel, 3)
        self.conv2 = ConvLayer(in_channel, out_channel, 3, downsample=True)
        self.skip = ConvLayer(
            in_channel, out_channel, 1, downsample=True, activate=False, bias=False
        )

    def forward(self, x: Tensor) -> Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2)
