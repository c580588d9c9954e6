"""Stage 1 at inference: audio windows -> sound latents, and the smoothing of latent paths."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from sgvideo.audio import MelSettings, segment_for_frames
from sgvideo.models.inversion_encoder import SoundInversionEncoder


class SoundInverter(nn.Module):
    """Stage 1 at inference: audio windows -> sound latents w_a = w_avg + E(log-mel).

    The mel settings are the ones the encoder was trained with (a checkpoint's hparams).
    """

    def __init__(
        self,
        encoder: SoundInversionEncoder,
        w_avg: Tensor,
        mel: MelSettings,
        window_seconds: float,
    ) -> None:
        super().__init__()
        if encoder.n_mels != mel.n_mels:
            raise ValueError(
                f"the encoder reads {encoder.n_mels} mel bins, the settings say {mel.n_mels}"
            )
        self.encoder = encoder.eval().requires_grad_(False)
        self.register_buffer("w_avg", w_avg.detach().reshape(-1).clone())
        self.mel = mel.log_mel()
        self.sample_rate = mel.sample_rate
        self.window_seconds = float(window_seconds)

    @classmethod
    def from_hparams(
        cls, encoder: SoundInversionEncoder, w_avg: Tensor, hparams: Mapping[str, Any]
    ) -> SoundInverter:
        if "window_seconds" not in hparams:
            raise ValueError("the checkpoint's hyper-parameters lack the audio window length")
        mel = MelSettings.from_hparams(hparams)
        return cls(encoder, w_avg, mel, hparams["window_seconds"])

    @torch.no_grad()
    def forward(self, windows: Tensor) -> Tensor:
        """Audio windows "b samples" -> sound latents "b n_latent style_dim"."""
        windows = windows.to(self.w_avg.device)
        return self.encoder.sound_latents(self.mel(windows), self.w_avg)

    def for_frames(self, wave: Tensor, fps: float, first: int, count: int) -> Tensor:
        """Sound latents of frames first .. first + count - 1 of a video at `fps`: "t n s".

        Windows are shifted inside the sound at its ends, as in training (`inside=True`).
        """
        windows = segment_for_frames(
            wave, self.sample_rate, count, fps, self.window_seconds, first_frame=first, inside=True
        )
        return self(windows)


class ExponentialSmoother:
    """w_s^t = smoothing * w_s^{t-1} + (1 - smoothing) * w^t over chunks "t ...", w_s^0 = w^0."""

    def __init__(self, smoothing: float) -> None:
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        self.smoothing = smoothing
        self.previous: Tensor | None = None

    def __call__(self, chunk: Tensor) -> Tensor:
        out = torch.empty_like(chunk)
        for i, w in enumerate(chunk):
            if self.previous is not None:
                w = self.smoothing * self.previous + (1.0 - self.smoothing) * w
            out[i] = self.previous = w
        return out
