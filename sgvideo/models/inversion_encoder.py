"""Sound inversion encoder: one audio window's log-mel -> a W+ offset from the generator's w_avg.

pSp-style ("Encoding in Style", Richardson et al. 2021): a residual CNN gives features at three
depths, a feature pyramid merges them top-down, and each W+ layer has its own map-to-style head:
coarse layers read the deepest features, mid layers the middle ones, fine layers the
shallowest. Group norm (not batch norm) keeps it independent of the batch, so it behaves the
same in training, generation and on every DDP rank.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from sgvideo.checkpoints import read_stage_checkpoint, submodule_state
from sgvideo.models.latents import GROUP_NAMES, style_groups

ENCODER_CONFIG_KEY = "sgvideo_encoder_config"


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, channels), channels)


class ResidualBlock(nn.Module):
    """Pre-activation residual block: "b c_in h w" -> "b c_out h/stride w/stride"."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _norm(c_in),
            nn.LeakyReLU(0.2),
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1),
            _norm(c_out),
            nn.LeakyReLU(0.2),
            nn.Conv2d(c_out, c_out, 3, padding=1),
        )
        same = c_in == c_out and stride == 1
        self.skip = nn.Identity() if same else nn.Conv2d(c_in, c_out, 1, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.body(x)


class MapToStyle(nn.Module):
    """ "b c h w" -> "b style_dim": strided convs, global average pool, linear.

    The linear layer starts at zero so that a new encoder outputs w_avg exactly.
    """

    def __init__(self, channels: int, style_dim: int, num_down: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(num_down):
            layers += [nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
        self.convs = nn.Sequential(*layers)
        self.linear = nn.Linear(channels, style_dim)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.convs(x).mean(dim=(-2, -1)))


class SoundInversionEncoder(nn.Module):
    """ "b n_mels time" log-mel of one window -> "b n_latent style_dim" W+ offset.

    `channels` are the widths at the three depths (each halves the resolution); the pyramid
    and the heads work at the deepest width. Heads per group follow `style_groups(n_latent)`.
    """

    def __init__(
        self,
        n_latent: int,
        style_dim: int = 512,
        n_mels: int = 128,
        channels: Sequence[int] = (64, 128, 256),
        blocks_per_stage: int = 2,
    ) -> None:
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if len(channels) != 3 or min(channels) < 1 or blocks_per_stage < 1:
            raise ValueError(
                f"channels must be three positive widths and blocks_per_stage >= 1, "
                f"got {channels}, {blocks_per_stage}"
            )
        self.n_latent, self.style_dim, self.n_mels = n_latent, style_dim, n_mels
        self.channels, self.blocks_per_stage = channels, blocks_per_stage
        self.groups = style_groups(n_latent)
        self.stem = nn.Conv2d(1, channels[0], 3, padding=1)
        self.stages = nn.ModuleList()
        c_prev = channels[0]
        for c in channels:
            blocks = [ResidualBlock(c_prev, c, stride=2)]
            blocks += [ResidualBlock(c, c) for _ in range(blocks_per_stage - 1)]
            self.stages.append(nn.Sequential(*blocks))
            c_prev = c
        width = channels[-1]
        self.lateral_mid = nn.Conv2d(channels[1], width, 1)
        self.lateral_fine = nn.Conv2d(channels[0], width, 1)
        # Deeper features are smaller: fewer strided convs before pooling.
        num_down = {"coarse": 1, "mid": 2, "fine": 3}
        self.heads = nn.ModuleList(
            MapToStyle(width, style_dim, num_down[name])
            for name in GROUP_NAMES
            for _ in range(n_latent)[self.groups[name]]
        )

    @property
    def config(self) -> dict[str, Any]:
        """The constructor arguments: `SoundInversionEncoder(**encoder.config)` rebuilds it."""
        return dict(
            n_latent=self.n_latent,
            style_dim=self.style_dim,
            n_mels=self.n_mels,
            channels=list(self.channels),
            blocks_per_stage=self.blocks_per_stage,
        )

    def pyramid(self, mel: torch.Tensor) -> dict[str, torch.Tensor]:
        """Feature maps per style group, all "b width h_g w_g" (fine is the largest)."""
        if mel.dim() != 3 or mel.shape[1] != self.n_mels:
            raise ValueError(f"mel must be 'b {self.n_mels} time', got {tuple(mel.shape)}")
        x = self.stem(mel.unsqueeze(1))
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        shallow, middle, deep = features
        mid = _upsample_to(deep, middle) + self.lateral_mid(middle)
        fine = _upsample_to(mid, shallow) + self.lateral_fine(shallow)
        return {"coarse": deep, "mid": mid, "fine": fine}

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        maps = self.pyramid(mel)
        styles = [
            self.heads[index](maps[name])
            for name in GROUP_NAMES
            for index in range(self.n_latent)[self.groups[name]]
        ]
        return torch.stack(styles, dim=1)

    def sound_latents(self, mel: torch.Tensor, w_avg: torch.Tensor) -> torch.Tensor:
        """Stage 1: log-mel windows "b n_mels time" -> sound latents w_a = w_avg + E(mel)
        "b n_latent style_dim", in w_avg's precision."""
        return w_avg + self(mel).to(w_avg.dtype)


def _upsample_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


def load_inversion_encoder(path: str | os.PathLike) -> tuple[SoundInversionEncoder, dict[str, Any]]:
    """The frozen encoder (eval mode) of a stage-1 `inversion` checkpoint and its hparams.

    The hparams say how the encoder was trained (generator_path, clip, sample_rate, n_mels,
    n_fft, hop_length, window_seconds, ...): turn sound into mel the same way.
    """
    checkpoint = read_stage_checkpoint(path, "inversion")
    config = checkpoint.get(ENCODER_CONFIG_KEY)
    if not isinstance(config, dict):
        raise ValueError(f"{path} has no encoder configuration ('{ENCODER_CONFIG_KEY}')")
    encoder = SoundInversionEncoder(**config)
    try:
        encoder.load_state_dict(submodule_state(checkpoint["state_dict"], "encoder"))
    except RuntimeError as error:
        raise ValueError(f"{path}: encoder weights do not match {config}: {error}") from None
    hparams = dict(checkpoint.get("hyper_parameters", {}))
    return encoder.eval().requires_grad_(False), hparams
