"""StyleGAN2 generator and discriminator, state-dict compatible with rosinality/stylegan2-pytorch.

Parameter and buffer names, shapes and arithmetic follow rosinality's `model.py`, so the public
checkpoints in that format load with `strict=True` and render the same images. Additions:
`synthesis(w_plus)` on W+ directly, a stored `w_avg`, a "non-fused" modulated convolution (same
result, faster on CPU) with channels_last activations and an optional bf16 synthesis. The
architecture alone: `sgvideo.checkpoints.stylegan2` reads and writes the checkpoints.
"""

from __future__ import annotations

import contextlib
import math

import torch
from einops import repeat
from torch import Tensor, nn

from sgvideo.models.noise_drift import pan_features, shift_noise
from sgvideo.models.stylegan2_layers import (
    ConstantInput,
    ConvLayer,
    EqualLinear,
    PixelNorm,
    ResBlock,
    StyledConv,
    ToRGB,
    iter_modulated_convs,
)

# bf16 synthesis keeps the layers below this resolution (4 and 8 px) in full precision: they
# cost ~1 % of the time, but every later layer amplifies their rounding errors (+3 dB PSNR at
# 256 px; 32 would give another +2.6 dB for 7 % more time, see docs).
BF16_MIN_RESOLUTION = 16
NOISE_MODES = ("const", "random", "none")
MODCONV_MODES = ("auto", "fused", "nonfused")
PRECISIONS = ("fp32", "bf16")
PAN_RESOLUTION = 8  # the features `synthesis` pans (every generator has them): the scene moves
# as one and keeps its shape
# Feature channels per resolution before the multiplier; resolutions >= 64 scale with it.
_BASE_CHANNELS = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}


def channel_table(size: int, channel_multiplier: int = 2, channel_max: int = 512) -> dict[int, int]:
    """Feature channels per resolution 4..size: rosinality's table, capped at `channel_max`."""
    if size not in _BASE_CHANNELS or size < 8:
        raise ValueError(f"size must be a power of two from 8 to 1024, got {size}")
    return {
        res: min(base * (channel_multiplier if res >= 64 else 1), channel_max)
        for res, base in _BASE_CHANNELS.items()
        if res <= size
    }


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

    def make_noise(
        self, noise_mode: str, batch: int, offset: Tensor | None = None
    ) -> list[Tensor | None]:
        """One noise image "b|1 1 res res" per StyledConv (None: no noise), each scrolled down
        by `offset` "b" frame heights when given (`noise_drift.shift_noise`)."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        stored = [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]
        if noise_mode == "none":
            return [None] * self.num_layers
        if noise_mode == "random":
            stored = [
                torch.randn(batch, *n.shape[1:], device=n.device, dtype=n.dtype) for n in stored
            ]
        if offset is None:
            return stored
        if offset.shape != (batch,):
            raise ValueError(
                f"noise offsets must be one per image ({batch}), got {tuple(offset.shape)}"
            )
        return [shift_noise(n, offset) for n in stored]

    def synthesis(
        self,
        w_plus: Tensor,
        noise_mode: str = "const",
        noise_offset: Tensor | None = None,
        pan_offset: Tensor | None = None,
    ) -> Tensor:
        """W+ "b n_latent style_dim" -> images "b 3 size size" in about [-1, 1]; `noise_offset`
        "b" scrolls each image's noise inputs down by that share of the frame, `pan_offset` "b"
        pans its 8 px features (and the picture drawn so far) right by that share of the frame
        (`noise_drift.pan_features`): the whole scene moves, and the finer layers draw their
        detail on it. (Panned at 4 px the scene deforms instead.)"""
        expected = (self.n_latent, self.style_dim)
        if w_plus.ndim != 3 or tuple(w_plus.shape[1:]) != expected:
            raise ValueError(
                f"w_plus must be (batch, {expected[0]}, {expected[1]}), got {tuple(w_plus.shape)}"
            )
        batch = w_plus.shape[0]
        if pan_offset is not None and pan_offset.shape != (batch,):
            raise ValueError(
                f"pan offsets must be one per image ({batch}), got {tuple(pan_offset.shape)}"
            )
        noise = self.make_noise(noise_mode, batch, noise_offset)
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
            if pan_offset is not None and 2 ** (k + 3) == PAN_RESOLUTION:
                x = pan_features(x, pan_offset)
                skip = pan_features(skip, pan_offset)
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


class Discriminator(nn.Module):
    """StyleGAN2 residual discriminator: images "b 3 size size" -> scores "b 1".

    `stddev_group`: how many images share one minibatch-stddev map (rosinality's 4; the whole
    batch lets the discriminator see that a batch lacks a scene, StyleGAN2-ADA's `mbstd_group`
    of up to 32). It changes no weight, so a checkpoint loads whatever it was trained with.
    """

    def __init__(
        self,
        size: int,
        channel_multiplier: int = 2,
        channel_max: int = 512,
        stddev_group: int = 4,
    ) -> None:
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
        if stddev_group < 1:
            raise ValueError(f"stddev_group must be at least 1, got {stddev_group}")
        self.stddev_group = stddev_group
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
