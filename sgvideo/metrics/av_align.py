"""AV-Align (Yariv et al., AAAI 2024): IoU of audio onsets and video motion peaks.

As the authors' reference script as updated in 2025 (guyyariv/TempoTokens, av_align.py):
- audio peaks: the sound at librosa's default 22050 Hz (resampled as `librosa.load` does),
  `onset_detect` with librosa's defaults, as times in seconds;
- video peaks: mean Farneback optical-flow magnitude between consecutive grey frames
  (pyr_scale 0.5, levels 3, winsize 15, iterations 3, poly_n 5, poly_sigma 1.2); the
  trajectory repeats the first pair's value so that entry i belongs to frame i; its strict
  local maxima i (0 < i < t - 1) of magnitude at least 0.1 are peaks at time i / fps;
- walking the audio peaks in order, each matches the first not yet matched video peak
  strictly within 1 / fps of it (a video peak matches at most once, so the score stays in
  [0, 1]); score = matches / (audio peaks + video peaks - matches).
A video with neither audio nor video peaks (the reference divides by zero) scores 0.
librosa and OpenCV come with the `metrics` extra: pip install 'sgvideo[metrics]'.
"""

from __future__ import annotations

import importlib

import numpy as np
import torch
from torchmetrics import Metric

from sgvideo.pixels import to_uint8

ONSET_SAMPLE_RATE = 22050  # librosa.load's default rate, which the reference relies on
MIN_PEAK_FLOW = 0.1  # a flow maximum below this is noise of a static scene, not a peak


def _optional(name: str):
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise ImportError(
            f"AV-Align needs {name} (librosa and opencv-python-headless): "
            "pip install 'sgvideo[metrics]'"
        ) from error


def audio_peak_times(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """Onset times in seconds of a mono "samples" waveform."""
    librosa = _optional("librosa")
    y = np.asarray(wave, dtype=np.float32)
    if sample_rate != ONSET_SAMPLE_RATE:
        y = librosa.resample(y, orig_sr=sample_rate, target_sr=ONSET_SAMPLE_RATE)
    return librosa.onset.onset_detect(y=y, sr=ONSET_SAMPLE_RATE, units="time")


def flow_trajectory(frames: np.ndarray) -> np.ndarray:
    """Mean Farneback flow magnitude per frame of uint8 RGB "t h w 3" frames: "t"."""
    cv2 = _optional("cv2")
    grey = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]
    magnitudes = []
    for prev, curr in zip(grey[:-1], grey[1:], strict=True):
        flow = cv2.calcOpticalFlowFarneback(prev, curr, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        magnitudes.append(cv2.mean(cv2.magnitude(flow[..., 0], flow[..., 1]))[0])
    return np.asarray(magnitudes[:1] + magnitudes, dtype=np.float64)


def video_peak_times(frames: np.ndarray, fps: float) -> np.ndarray:
    """Times in seconds of the strict local maxima (>= MIN_PEAK_FLOW) of the flow trajectory."""
    if len(frames) < 2:
        raise ValueError(f"AV-Align needs at least 2 frames, got {len(frames)}")
    m = flow_trajectory(frames)
    peak = (m[1:-1] > m[:-2]) & (m[1:-1] > m[2:]) & (m[1:-1] >= MIN_PEAK_FLOW)
    inner = np.flatnonzero(peak) + 1
    return inner / fps


def peak_iou(audio_peaks: np.ndarray, video_peaks: np.ndarray, fps: float) -> float:
    """Matched peaks over the union of the peaks, matching as the reference does.

    Each audio peak in order takes the first unused video peak strictly within 1 / fps.
    """
    used = np.zeros(len(video_peaks), dtype=bool)
    video_peaks = np.asarray(video_peaks, dtype=np.float64)
    matches = 0
    for audio_peak in np.asarray(audio_peaks, dtype=np.float64):
        near = (video_peaks - 1 / fps < audio_peak) & (audio_peak < video_peaks + 1 / fps)
        free = np.flatnonzero(near & ~used)
        if len(free):
            used[free[0]] = True
            matches += 1
    union = len(audio_peaks) + len(video_peaks) - matches
    return matches / union if union else 0.0


def av_align_score(frames: np.ndarray, wave: np.ndarray, sample_rate: int, fps: float) -> float:
    """AV-Align of one video: uint8 RGB frames "t h w 3" at `fps` and its mono sound."""
    video_peaks = video_peak_times(frames, fps)
    return peak_iou(audio_peak_times(wave, sample_rate), video_peaks, fps)


class AVAlign(Metric):
    """Mean AV-Align over videos: `update(frames "b t 3 h w" ([-1, 1] or uint8),
    waveforms "b samples", sample_rate, fps)`. Scored on CPU with librosa and OpenCV."""

    higher_is_better = True
    is_differentiable = False
    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("score_sum", torch.zeros((), dtype=torch.float64), "sum")
        self.add_state("count", torch.zeros((), dtype=torch.float64), "sum")

    def update(
        self, frames: torch.Tensor, waveforms: torch.Tensor, sample_rate: int, fps: float
    ) -> None:
        if frames.dim() != 5 or frames.shape[2] != 3:
            raise ValueError(f"AVAlign expects frames 'b t 3 h w', got {tuple(frames.shape)}")
        if waveforms.dim() != 2 or waveforms.shape[0] != frames.shape[0]:
            raise ValueError(
                f"AVAlign expects waveforms 'b samples' for {frames.shape[0]} videos, "
                f"got {tuple(waveforms.shape)}"
            )
        pixels = to_uint8(frames.detach()).permute(0, 1, 3, 4, 2).cpu().numpy()
        sounds = waveforms.detach().float().cpu().numpy()
        for video, sound in zip(pixels, sounds, strict=True):
            self.score_sum += av_align_score(video, sound, sample_rate, fps)
            self.count += 1

    def compute(self) -> torch.Tensor:
        if self.count == 0:
            raise ValueError("AVAlign: no videos were scored")
        return self.score_sum / self.count
