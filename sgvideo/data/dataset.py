"""Datasets over prepared clips: audio-visual clip windows and single frames.

Sampling convention: a window of `clip_seconds` starting at `start` seconds is cut into
`num_frames` equal segments; segment t covers [start + t * w, start + (t + 1) * w) with
w = clip_seconds / num_frames. Its frame is the cached frame on screen at the segment's
centre and its audio is exactly that segment (`segment_for_frames` with fps = 1 / w). A
clip shorter than the window repeats its last frame and has its audio zero-padded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from sgvideo.audio import LogMel, segment_for_frames
from sgvideo.data.cache import CachedClip
from sgvideo.pixels import to_unit_range


def window_frame_indices(
    start: float, clip_seconds: float, num_frames: int, fps: float, available: int
) -> np.ndarray:
    """Cached frame index on screen at each segment centre of the window: "t"."""
    centres = start + (np.arange(num_frames) + 0.5) * (clip_seconds / num_frames)
    return np.clip(np.floor(centres * fps + 1e-9).astype(np.int64), 0, available - 1)


def cut_window(
    frames: np.ndarray,
    audio: np.ndarray,
    fps: float,
    sample_rate: int,
    start: float,
    clip_seconds: float,
    num_frames: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """One clip window from cached arrays (frames "n h w 3" uint8, audio "samples").

    Returns frames "t 3 h w" in [-1, 1], audio windows "t samples" and the window's
    waveform "clip_samples" (zero-padded past the end of the audio).
    """
    index = window_frame_indices(start, clip_seconds, num_frames, fps, len(frames))
    clip_samples = round(clip_seconds * sample_rate)
    first = round(start * sample_rate)
    waveform = torch.zeros(clip_samples)
    piece = torch.from_numpy(np.array(audio[first : first + clip_samples], dtype=np.float32))
    waveform[: len(piece)] = piece
    windows = segment_for_frames(
        waveform, sample_rate, num_frames, num_frames / clip_seconds, clip_seconds / num_frames
    )
    return to_unit_range(frames[index]), windows, waveform


class ClipDataset(Dataset):
    """Clip windows of prepared clips as dicts (see the module docstring for the sampling).

    `random_window=True` (training) draws the window's start uniformly over the clip with
    torch's RNG (seeded per DataLoader worker); otherwise the window is the clip's centre.
    `hflip=True` mirrors all frames of an item with probability 1/2 (training augmentation).
    """

    def __init__(
        self,
        clips: list[CachedClip],
        num_frames: int,
        clip_seconds: float,
        mel: LogMel,
        random_window: bool = False,
        hflip: bool = False,
    ) -> None:
        self.clips = clips
        self.num_frames = num_frames
        self.clip_seconds = clip_seconds
        self.mel = mel
        self.random_window = random_window
        self.hflip = hflip

    def __len__(self) -> int:
        return len(self.clips)

    def window_start(self, clip: CachedClip) -> float:
        """Start of the window in seconds: random (training) or centred, never negative."""
        slack = max(0.0, clip.duration - self.clip_seconds)
        return slack * (torch.rand(()).item() if self.random_window else 0.5)

    def __getitem__(self, index: int) -> dict[str, Any]:
        clip = self.clips[index]
        frames, audio, waveform = cut_window(
            clip.load_frames(),
            clip.load_audio(),
            clip.fps,
            clip.sample_rate,
            self.window_start(clip),
            self.clip_seconds,
            self.num_frames,
        )
        if self.hflip and torch.rand(()).item() < 0.5:
            frames = frames.flip(-1)
        with torch.no_grad():
            mel = self.mel(audio)
        return {
            "frames": frames,
            "audio": audio,
            "mel": mel,
            "waveform": waveform,
            "category": clip.category,
            "category_name": clip.category_name,
            "path": clip.path,
        }
