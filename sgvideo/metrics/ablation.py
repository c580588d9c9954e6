"""The ablation's video sources, each a `VideoGenerator` built from one stage-2 model.

(a) random latents, no sound: a slow random walk in W+, a seeded latent every
    `RANDOM_WALK_SECONDS` and linear interpolation between them (the sound sets only the length);
(b) stage 1 alone: frame t rendered from the sound latent of its own window, no trajectory;
(c) the full model: `SoundToVideo.__call__`.
"""

from __future__ import annotations

import torch
import torchaudio
from torch import Tensor

from sgvideo.audio import frame_count
from sgvideo.inference.latents import seed_latent
from sgvideo.inference.media import seeded
from sgvideo.inference.pipeline import SoundToVideo
from sgvideo.metrics.sources import VideoGenerator

RANDOM_WALK_SECONDS = 2.0
FULL_MODEL = "full model"


def _model_wave(model: SoundToVideo, waveform: Tensor, sample_rate: int) -> Tensor:
    wave = torch.as_tensor(waveform, dtype=torch.float32)
    if sample_rate != model.sample_rate:
        wave = torchaudio.functional.resample(wave, int(sample_rate), model.sample_rate)
    return wave


def _render(model: SoundToVideo, latents: Tensor) -> Tensor:
    """Latents "t n s" -> frames "t 3 h w" in [-1, 1], `model.batch_size` at a time, on CPU."""
    with torch.no_grad():
        chunks = latents.split(model.batch_size)
        return torch.cat([model.generator.synthesis(w, model.noise_mode).cpu() for w in chunks])


class RandomLatents:
    """(a): frames of a seeded slow random walk in W+ that never looks at the sound."""

    def __init__(self, model: SoundToVideo) -> None:
        self.model = model

    def __call__(self, waveform: Tensor, sample_rate: int, fps: float, seed: int) -> Tensor:
        count = frame_count(waveform.shape[-1], sample_rate, fps)
        times = torch.arange(count, dtype=torch.float64) / fps / RANDOM_WALK_SECONDS
        stops = int(times[-1]) + 2
        generator = self.model.generator
        keys = torch.stack([seed_latent(generator, seed * 1000 + k) for k in range(stops)])
        lower = times.floor().long()
        weight = (times - lower).float().to(keys.device)[:, None, None]
        with seeded(seed):
            return _render(self.model, torch.lerp(keys[lower], keys[lower + 1], weight))


class StageOneOnly:
    """(b): each frame rendered from its own window's sound latent (stage 1, no trajectory)."""

    def __init__(self, model: SoundToVideo) -> None:
        self.model = model

    def __call__(self, waveform: Tensor, sample_rate: int, fps: float, seed: int) -> Tensor:
        wave = _model_wave(self.model, waveform, sample_rate)
        count = self.model.frame_count(wave.shape[-1], fps)
        with seeded(seed):
            return _render(self.model, self.model.inverter.for_frames(wave, fps, 0, count))


def ablation_baselines(model: SoundToVideo) -> dict[str, VideoGenerator]:
    """(a) and (b) by their names in the ablation table; (c) is `model` itself (FULL_MODEL)."""
    return {"random latents, no sound": RandomLatents(model), "stage 1 alone": StageOneOnly(model)}
