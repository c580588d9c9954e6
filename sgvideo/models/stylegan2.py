"""StyleGAN2 generator and discriminator, state-dict compatible with rosinality/stylegan2-pytorch.

Parameter and buffer names, shapes and arithmetic follow rosinality's `model.py`, so the public
checkpoints in that format load with `strict=True` and render the same images. Additions:
`synthesis(w_plus)` on W+ directly, a stored `w_avg`, a "non-fused" modulated convolution (same
result, faster on CPU) with channels_last activations, an optional bf16 synthesis, and checkpoint
loaders that infer the architecture from the tensors and explain what does not fit.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import Tensor, nn

from sgvideo.files import atomic_path, read_torch_file, require_file
from stylegan2_ops import FusedLeakyReLU, fused_leaky_relu, upfirdn2d

# bf16 synthesis keeps the layers below this resolution (4 and 8 px) in full precision: they
# cost ~1 % of the time, but every later layer amplifies their rounding errors (+3 dB PSNR at
# 256 px; 32 would give another +2.6 dB for 7 % more time, see docs).
BF16_MIN_RESOLUTION = 16
BLUR_KERNEL = (1, 3, 3, 1)
NOISE_MODES = ("const", "random", "none")
MODCONV_MODES = ("auto", "fused", "nonfused")
PRECISIONS = ("fp32", "bf16")
# Feature channels per resolution before the multiplier; resolutions >= 64 scale with it.
_BASE_CHANNELS = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}
_CHECKPOINT_HINT = (
    "Expected a rosinality/stylegan2-pytorch checkpoint (a dict with 'g_ema', optionally 'g', 'd',"
    " 'latent_avg'); NVlabs .pkl files must first be converted with rosinality's convert_weight.py"
)


def channel_table(size: int, channel_multiplier: int = 2, channel_max: int = 512) -> dict[int, int]:
    """Feature channels per resolution 4..size: rosinality's table, capped at `channel_max`."""
    if size not in _BASE_CHANNELS or size < 8:
        raise ValueError(f"size must be a power of two from 8 to 1024, got {size}")
    return {
        res: min(base * (channel_multiplier if res >= 64 else 1), channel_max)
        for res, base in _BASE_CHANNELS.items()
        if res <= size
    }


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
    - "auto": fused on CUDA (rosinality's choice), non-fused on CPU, where it is faster at every
      batch size (bench/bench_synthesis.py).
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
            return x.device.type != "cpu"
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


# ----------------------------------------------------------------------------- generator


class Generator(nn.Module):
    """StyleGAN2 generator: mapping network z -> w, synthesis network W+ -> image in ~[-1, 1].

    `modconv` ("auto" | "fused" | "nonfused") picks the modulated-convolution form and
    `precision` ("fp32" | "bf16") the synthesis arithmetic: bf16 autocasts the layers from
    BF16_MIN_RESOLUTION px up (styles, demodulation and the RGB sum stay float32) and returns
    float32 images. `channels_last` (default True) keeps CPU activations channels_last, which
    oneDNN convolves without layout reorders; False gives rosinality's NCHW layout. All three
    can be changed at any time.
    """

    def __init__(
        self,
        size: int,
        style_dim: int = 512,
        n_mlp: int = 8,
        channel_multiplier: int = 2,
        channel_max: int = 512,
        lr_mlp: float = 0.01,
        *,
        modconv: str = "auto",
        precision: str = "fp32",
    ) -> None:
        super().__init__()
        channels = channel_table(size, channel_multiplier, channel_max)
        self.size = size
        self.style_dim = style_dim
        self.n_mlp = n_mlp
        self.channel_multiplier = channel_multiplier
        self.channel_max = channel_max
        self.log_size = int(math.log2(size))
        self.num_layers = (self.log_size - 2) * 2 + 1
        self.n_latent = self.log_size * 2 - 2

        self.style = nn.Sequential(
            PixelNorm(),
            *(
                EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation=True)
                for _ in range(n_mlp)
            ),
        )
        self.input = ConstantInput(channels[4])
        self.conv1 = StyledConv(channels[4], channels[4], style_dim)
        self.to_rgb1 = ToRGB(channels[4], style_dim, upsample=False)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for layer_idx in range(self.num_layers):
            res = 2 ** ((layer_idx + 5) // 2)
            self.noises.register_buffer(f"noise_{layer_idx}", torch.randn(1, 1, res, res))
        in_channel = channels[4]
        for log_res in range(3, self.log_size + 1):
            out_channel = channels[2**log_res]
            self.convs.append(StyledConv(in_channel, out_channel, style_dim, upsample=True))
            self.convs.append(StyledConv(out_channel, out_channel, style_dim))
            self.to_rgbs.append(ToRGB(out_channel, style_dim))
            in_channel = out_channel
        self.register_buffer("w_avg", torch.zeros(style_dim), persistent=False)
        self.modconv = modconv
        self.precision = precision
        self.channels_last = True

    @property
    def modconv(self) -> str:
        return self._modconv

    @modconv.setter
    def modconv(self, mode: str) -> None:
        if mode not in MODCONV_MODES:
            raise ValueError(f"modconv must be one of {MODCONV_MODES}, got {mode!r}")
        self._modconv = mode
        for module in iter_modulated_convs(self):
            module.mode = mode

    @property
    def precision(self) -> str:
        return self._precision

    @precision.setter
    def precision(self, precision: str) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self._precision = precision

    def config(self) -> dict[str, int]:
        """The constructor arguments that fix the architecture (saved as a checkpoint's `args`)."""
        return {
            "size": self.size,
            "style_dim": self.style_dim,
            "n_mlp": self.n_mlp,
            "channel_multiplier": self.channel_multiplier,
            "channel_max": self.channel_max,
        }

    def mapping(self, z: Tensor) -> Tensor:
        """z "b style_dim" -> w "b style_dim"."""
        if z.ndim != 2 or z.shape[1] != self.style_dim:
            raise ValueError(f"z must be (batch, {self.style_dim}), got {tuple(z.shape)}")
        return self.style(z)

    @torch.no_grad()
    def mean_latent(self, n: int = 4096, generator: torch.Generator | None = None) -> Tensor:
        """Average w of `n` random z: "1 style_dim" (the truncation centre)."""
        device = self.input.input.device
        z = torch.randn(n, self.style_dim, device=device, generator=generator)
        return self.style(z).mean(0, keepdim=True)

    def truncate(self, w: Tensor, truncation: float) -> Tensor:
        """Move w (any "... style_dim") toward `w_avg`: truncation 1 keeps it, 0 gives w_avg."""
        return self.w_avg + truncation * (w - self.w_avg)

    def make_noise(self, noise_mode: str, batch: int) -> list[Tensor | None]:
        """One noise image "b|1 1 res res" per StyledConv (None: no noise)."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        stored = [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]
        if noise_mode == "const":
            return stored
        if noise_mode == "none":
            return [None] * self.num_layers
        return [torch.randn(batch, *n.shape[1:], device=n.device, dtype=n.dtype) for n in stored]

    def synthesis(self, w_plus: Tensor, noise_mode: str = "const") -> Tensor:
        """W+ "b n_latent style_dim" -> images "b 3 size size" in about [-1, 1]."""
        expected = (self.n_latent, self.style_dim)
        if w_plus.ndim != 3 or tuple(w_plus.shape[1:]) != expected:
            raise ValueError(
                f"w_plus must be (batch, {expected[0]}, {expected[1]}), got {tuple(w_plus.shape)}"
            )
        batch = w_plus.shape[0]
        noise = self.make_noise(noise_mode, batch)
        x = self.input(batch)
        if self.channels_last and x.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        with self._arithmetic(4, w_plus.device):
            x = self.conv1(x, w_plus[:, 0], noise[0])
            skip = self.to_rgb1(x, w_plus[:, 1])
        for k, (up_conv, conv, to_rgb) in enumerate(
            zip(self.convs[::2], self.convs[1::2], self.to_rgbs, strict=True)
        ):
            i = 2 * k + 1
            with self._arithmetic(2 ** (k + 3), w_plus.device):
                x = up_conv(x, w_plus[:, i], noise[i])
                x = conv(x, w_plus[:, i + 1], noise[i + 1])
                skip = to_rgb(x, w_plus[:, i + 2], skip)
        return skip.float() if self.precision == "bf16" else skip

    def forward(self, z: Tensor, truncation: float = 1.0, noise_mode: str = "const") -> Tensor:
        """z "b style_dim" -> images "b 3 size size" (one w for every layer)."""
        w = self.mapping(z)
        if truncation != 1.0:
            w = self.truncate(w, truncation)
        return self.synthesis(repeat(w, "b d -> b n d", n=self.n_latent), noise_mode)

    def _arithmetic(
        self, resolution: int, device: torch.device
    ) -> contextlib.AbstractContextManager:
        """fp32: leave autocast as the caller set it. bf16: see BF16_MIN_RESOLUTION."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        use_bf16 = resolution >= BF16_MIN_RESOLUTION
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16)


# ----------------------------------------------------------------------------- discriminator


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


class Discriminator(nn.Module):
    """StyleGAN2 residual discriminator: images "b 3 size size" -> scores "b 1"."""

    def __init__(self, size: int, channel_multiplier: int = 2, channel_max: int = 512) -> None:
        super().__init__()
        channels = channel_table(size, channel_multiplier, channel_max)
        self.size = size
        self.channel_multiplier = channel_multiplier
        self.channel_max = channel_max
        log_size = int(math.log2(size))
        convs: list[nn.Module] = [ConvLayer(3, channels[size], 1)]
        in_channel = channels[size]
        for log_res in range(log_size, 2, -1):
            out_channel = channels[2 ** (log_res - 1)]
            convs.append(ResBlock(in_channel, out_channel))
            in_channel = out_channel
        self.convs = nn.Sequential(*convs)
        self.stddev_group = 4
        self.stddev_feat = 1
        self.final_conv = ConvLayer(in_channel + 1, channels[4], 3)
        self.final_linear = nn.Sequential(
            EqualLinear(channels[4] * 4 * 4, channels[4], activation=True),
            EqualLinear(channels[4], 1),
        )

    def config(self) -> dict[str, int]:
        return {
            "size": self.size,
            "channel_multiplier": self.channel_multiplier,
            "channel_max": self.channel_max,
        }

    def forward(self, images: Tensor) -> Tensor:
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, self.size, self.size):
            raise ValueError(
                f"images must be (batch, 3, {self.size}, {self.size}), got {tuple(images.shape)}"
            )
        out = self.convs(images)
        out = torch.cat([out, self._minibatch_stddev(out)], 1)
        out = self.final_conv(out)
        return self.final_linear(out.flatten(1))

    def _minibatch_stddev(self, x: Tensor) -> Tensor:
        """Std over groups of samples (sample i with i + batch/group, ...) as one extra map."""
        batch, channel, height, width = x.shape
        group = min(batch, self.stddev_group)
        if batch % group:
            raise ValueError(f"batch size {batch} must be divisible by {group} (minibatch stddev)")
        grouped = x.view(group, -1, self.stddev_feat, channel // self.stddev_feat, height, width)
        stddev = torch.sqrt(grouped.var(0, unbiased=False) + 1e-8)
        stddev = stddev.mean([2, 3, 4], keepdim=True).squeeze(2)
        return stddev.repeat(group, 1, height, width)


# ----------------------------------------------------------------------------- checkpoints


def save_rosinality_checkpoint(
    path: str | os.PathLike,
    *,
    g_ema: Generator,
    g: Generator | None = None,
    d: Discriminator | None = None,
    latent_avg: Tensor | None = None,
) -> Path:
    """Write a rosinality-format checkpoint atomically; `args` records the architecture."""
    ckpt: dict[str, object] = {"g_ema": _cpu_state(g_ema), "args": g_ema.config()}
    if g is not None:
        ckpt["g"] = _cpu_state(g)
    if d is not None:
        ckpt["d"] = _cpu_state(d)
    if latent_avg is not None:
        if latent_avg.numel() != g_ema.style_dim:
            raise ValueError(
                f"latent_avg must have {g_ema.style_dim} values, "
                f"got shape {tuple(latent_avg.shape)}"
            )
        ckpt["latent_avg"] = latent_avg.detach().reshape(-1).float().cpu()
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return Path(path)


def load_generator(
    path: str | os.PathLike,
    map_location: str | torch.device = "cpu",
    *,
    size: int | None = None,
    modconv: str = "auto",
    precision: str = "fp32",
) -> Generator:
    """Frozen (eval, no grad) `g_ema` of a rosinality checkpoint, architecture read from shapes.

    `w_avg` comes from the checkpoint's `latent_avg`, else from 4096 seeded samples. `size`, when
    given, is checked against the checkpoint.
    """
    ckpt = _read_checkpoint(path, "StyleGAN2 generator checkpoint")
    state = _state_entry(ckpt, "g_ema", path)
    config = _generator_config(state, _saved_args(ckpt), path)
    _check_size(config["size"], size, path)
    generator = Generator(**config, modconv=modconv, precision=precision)
    _load_state(generator, state, "g_ema", path)
    latent_avg = ckpt.get("latent_avg")
    if latent_avg is None:
        w_avg = generator.mean_latent(4096, generator=torch.Generator().manual_seed(0))
    elif isinstance(latent_avg, Tensor) and latent_avg.numel() == generator.style_dim:
        w_avg = latent_avg
    else:
        found = tuple(latent_avg.shape) if isinstance(latent_avg, Tensor) else type(latent_avg)
        raise ValueError(
            f"{path}: 'latent_avg' must hold {generator.style_dim} values, found {found}"
        )
    generator.w_avg.copy_(w_avg.reshape(-1))
    return generator.eval().requires_grad_(False).to(map_location)


def load_discriminator(
    path: str | os.PathLike, map_location: str | torch.device = "cpu", *, size: int | None = None
) -> Discriminator:
    """Frozen (eval, no grad) `d` of a rosinality checkpoint (`.train().requires_grad_()`
    to fine-tune it); architecture read from the shapes, `size` checked when given."""
    ckpt = _read_checkpoint(path, "StyleGAN2 discriminator checkpoint")
    state = _state_entry(ckpt, "d", path)
    config = _discriminator_config(state, _saved_args(ckpt), path)
    _check_size(config["size"], size, path)
    discriminator = Discriminator(**config)
    _load_state(discriminator, state, "d", path)
    return discriminator.eval().requires_grad_(False).to(map_location)


def _cpu_state(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().cpu() for k, v in module.state_dict().items()}


def _read_checkpoint(path: str | os.PathLike, what: str) -> dict:
    file = require_file(path, what, hint=_CHECKPOINT_HINT)
    # train.py of rosinality pickles its argparse.Namespace as `args`: harmless, so allow it
    ckpt = read_torch_file(file, what, _CHECKPOINT_HINT, safe_globals=[argparse.Namespace])
    if not isinstance(ckpt, dict):
        raise ValueError(f"{file} holds a {type(ckpt).__name__}, not a dict. {_CHECKPOINT_HINT}")
    return ckpt


def _state_entry(ckpt: dict, key: str, path: str | os.PathLike) -> Mapping[str, Tensor]:
    state = ckpt.get(key)
    if isinstance(state, Mapping):
        return state
    found = sorted(map(str, ckpt))[:8]
    bare = any(isinstance(v, Tensor) for v in ckpt.values())
    hint = f" (a bare state dict? wrap it as {{'{key}': state_dict}})" if bare else ""
    raise ValueError(
        f"{path} has no '{key}' state dict; top-level keys found: {found}{hint}. {_CHECKPOINT_HINT}"
    )


def _saved_args(ckpt: dict) -> dict:
    args = ckpt.get("args")
    if isinstance(args, argparse.Namespace):
        return vars(args)
    return args if isinstance(args, dict) else {}


def _shape(state: Mapping[str, Tensor], key: str, ndim: int, path: str | os.PathLike) -> tuple:
    value = state.get(key)
    if not isinstance(value, Tensor) or value.ndim != ndim:
        found = tuple(value.shape) if isinstance(value, Tensor) else "nothing"
        examples = list(state)[:5]
        raise ValueError(
            f"{path}: expected a {ndim}-d tensor '{key}', found {found} (keys found include "
            f"{examples}). {_CHECKPOINT_HINT}"
        )
    return tuple(value.shape)


def _indices(state: Mapping[str, Tensor], pattern: str) -> list[int]:
    regex = re.compile(pattern)
    return sorted(int(m.group(1)) for k in state if (m := regex.fullmatch(k)))


def _generator_config(state: Mapping[str, Tensor], args: dict, path: str | os.PathLike) -> dict:
    style_dim = _shape(state, "style.1.weight", 2, path)[1]
    n_rgbs = len(_indices(state, r"to_rgbs\.(\d+)\.conv\.weight"))
    channels = {4: _shape(state, "input.input", 4, path)[1]}
    for i in range(n_rgbs):
        channels[2 ** (i + 3)] = _shape(state, f"to_rgbs.{i}.conv.weight", 5, path)[2]
    multiplier, channel_max = _channel_layout(channels, args, path)
    return {
        "size": 2 ** (n_rgbs + 2),
        "style_dim": style_dim,
        "n_mlp": len(_indices(state, r"style\.(\d+)\.weight")),
        "channel_multiplier": multiplier,
        "channel_max": channel_max,
    }


def _discriminator_config(state: Mapping[str, Tensor], args: dict, path: str | os.PathLike) -> dict:
    n_blocks = len(_indices(state, r"convs\.(\d+)\.conv1\.0\.weight"))
    log_size = n_blocks + 2
    channels = {2**log_size: _shape(state, "convs.0.0.weight", 4, path)[0]}
    for k in range(1, n_blocks + 1):
        channels[2 ** (log_size - k)] = _shape(state, f"convs.{k}.conv2.1.weight", 4, path)[0]
    multiplier, channel_max = _channel_layout(channels, args, path)
    return {"size": 2**log_size, "channel_multiplier": multiplier, "channel_max": channel_max}


def _channel_layout(
    channels: dict[int, int], args: dict, path: str | os.PathLike
) -> tuple[int, int]:
    """(channel_multiplier, channel_max) reproducing the channels seen per resolution.

    Sizes up to 32 px do not depend on the multiplier: the saved `args` (else 2) decide.
    """
    size = max(channels)
    if size < 8:
        raise ValueError(f"{path}: no upsampling layers found; not a StyleGAN2 checkpoint")
    multipliers = [args.get("channel_multiplier", 2), 2]
    multipliers += [c // _BASE_CHANNELS[r] for r, c in channels.items() if r >= 64]
    maxima = [args.get("channel_max", 512), 512, *channels.values()]
    for multiplier in dict.fromkeys(m for m in multipliers if isinstance(m, int) and m > 0):
        for channel_max in dict.fromkeys(maxima):
            if channel_table(size, multiplier, channel_max) == channels:
                return multiplier, channel_max
    raise ValueError(
        f"{path}: channels per resolution {channels} fit no StyleGAN2 channel_multiplier / "
        "channel_max"
    )


def _check_size(found: int, expected: int | None, path: str | os.PathLike) -> None:
    if expected is not None and found != expected:
        raise ValueError(f"{path}: expected a {expected} px model, the checkpoint is {found} px")


def _load_state(
    model: Generator | Discriminator,
    state: Mapping[str, Tensor],
    key: str,
    path: str | os.PathLike,
) -> None:
    """load_state_dict(strict=True), after a readable report of what does not fit."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {
        k: tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__ for k, v in state.items()
    }
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    mismatched = [
        f"{k}: expected {expected[k]}, found {found[k]}"
        for k in expected
        if k in found and found[k] != expected[k]
    ]
    problems = [
        f"{len(items)} {label} (e.g. {items[:4]})"
        for label, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", mismatched),
        )
        if items
    ]
    if problems:
        raise ValueError(
            f"{path}: '{key}' does not fit {type(model).__name__}({_describe(model)}): "
            + "; ".join(problems)
        )
    model.load_state_dict(state, strict=True)


def _describe(model: Generator | Discriminator) -> str:
    return ", ".join(f"{k}={v}" for k, v in model.config().items())
