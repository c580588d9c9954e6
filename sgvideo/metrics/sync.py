"""Loudness-motion sync: does the picture move when the sound is loud?

Per frame t of a video at `fps`: loudness l_t = RMS of the frame's audio window (1 / fps long,
as `sgvideo.data.synth.frame_loudness`, which also drives the synthetic world's pictures) and
motion m_t = mean |x_t - x_{t-1}| over pixels and channels (uint8 units), for t >= 1. The
score of a video is Pearson's r between l_1..l_{T-1} and m_1..m_{T-1}; it is undefined (the
video is counted, not scored) when either series is constant or T < 3.
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics import Metric

from sgvideo.data.synth import frame_loudness
from sgvideo.pixels import to_uint8


def frame_motion(frames: np.ndarray) -> np.ndarray:
    """Mean absolute difference of each frame to the previous one: uint8 "t h w 3" -> "t-1"."""
    x = np.asarray(frames, dtype=np.float64)
    return np.abs(x[1:] - x[:-1]).reshape(len(x) - 1, -1).mean(axis=1)


def pearson_r(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson's correlation of two equal-length series; None when one is constant."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    a, b = a - a.mean(), b - b.mean()
    norm = np.sqrt((a * a).sum() * (b * b).sum())
    if len(a) < 2 or norm <= 1e-12 * max(1.0, np.abs(a).max() * np.abs(b).max()):
        return None
    return float((a * b).sum() / norm)


def loudness_motion_r(
    frames: np.ndarray, wave: np.ndarray, sample_rate: int, fps: float
) -> float | None:
    """r of one video (uint8 "t h w 3" at `fps`) with a mono sound; None when undefined."""
    if len(frames) < 3:
        return None
    loudness = frame_loudness(np.array(wave, np.float32), sample_rate, len(frames), fps)
    return pearson_r(loudness[1:], frame_motion(frames))


class LoudnessMotionSync(Metric):
    """Mean over videos of Pearson's r between per-frame loudness and per-frame motion.

    sync = (1 / V) sum_v r(l^v_{1..T-1}, m^v_{1..T-1}), l = RMS of each frame's 1 / fps audio
    window, m = mean absolute difference to the previous frame (see the module docstring).
    `update(frames "b t 3 h w" ([-1, 1] or uint8), waveforms "b samples", sample_rate, fps)`.
    Videos whose r is undefined (still picture, constant loudness, under 3 frames) are counted
    in `undefined`, not averaged. States are float64 sums, mergeable across processes.
    Chance is about 0: score videos against another clip's sound to measure it.
    """

    higher_is_better = True
    is_differentiable = False
    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("r_sum", torch.zeros((), dtype=torch.float64), "sum")
        self.add_state("count", torch.zeros((), dtype=torch.float64), "sum")
        self.add_state("undefined", torch.zeros((), dtype=torch.float64), "sum")

    def update(
        self, frames: torch.Tensor, waveforms: torch.Tensor, sample_rate: int, fps: float
    ) -> None:
        if frames.dim() != 5 or frames.shape[2] != 3:
            raise ValueError(
                f"LoudnessMotionSync expects frames 'b t 3 h w', got {tuple(frames.shape)}"
            )
        if waveforms.dim() != 2 or waveforms.shape[0] != frames.shape[0]:
            raise ValueError(
                f"LoudnessMotionSync expects waveforms 'b samples' for {frames.shape[0]} videos, "
                f"got {tuple(waveforms.shape)}"
            )
        pixels = to_uint8(frames.detach()).permute(0, 1, 3, 4, 2).cpu().numpy()
        sounds = waveforms.detach().float().cpu().numpy()
        for video, sound in zip(pixels, sounds, strict=True):
            r = loudness_motion_r(video, sound, sample_rate, fps)
            if r is None:
                self.undefined += 1
            else:
                self.r_sum += r
                self.count += 1

    def compute(self) -> torch.Tensor:
        if self.count == 0:
            raise ValueError(
                f"LoudnessMotionSync: no video had a defined r ({int(self.undefined)} undefined)"
            )
        return self.r_sum / self.count
