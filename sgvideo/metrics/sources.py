"""Videos to evaluate: decoded video files, prepared cache clips, or a generator's output."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange
from torch.nn import functional as F

from sgvideo.audio import load_audio
from sgvideo.data.index import VIDEO_EXTENSIONS
from sgvideo.pixels import to_uint8, to_unit_range
from sgvideo.video_io import probe_video, read_frames

# (waveform "samples" float32, sample_rate, fps, seed) -> frames "t 3 h w" in [-1, 1], one frame
# per 1 / fps of the sound from its start.
VideoGenerator = Callable[[torch.Tensor, int, float, int], torch.Tensor]


@dataclass(frozen=True)
class Video:
    """A whole video: uint8 RGB frames "t h w 3" at `fps`, its mono sound (or None) and the
    category of that sound when known."""

    name: str
    frames: np.ndarray
    fps: float
    audio: np.ndarray | None
    sample_rate: int
    category: str | None = None

    def clip(self, start: int, num_frames: int, step: float) -> np.ndarray | None:
        """Frames start + round(k * step) for k < `num_frames`, or None if too short.

        A fractional `step` resamples the video: step = fps / rate takes `num_frames` frames at
        `rate` frames per second (the nearest frame at each time).
        """
        picks = clip_indices(start, num_frames, step)
        if start < 0 or picks[-1] >= len(self.frames):
            return None
        return np.array(self.frames[picks])  # a copy: frames may be memory-mapped


def clip_indices(start: int, num_frames: int, step: float) -> np.ndarray:
    """start + round(k * step) for k in 0 .. num_frames - 1 (round half up): "num_frames"."""
    return start + np.floor(np.arange(num_frames) * step + 0.5).astype(np.int64)


def video_files(folder: str | os.PathLike) -> list[Path]:
    """Every video file under `folder` (sub-folders too), sorted by path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"video folder not found: {folder}")
    files = sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()
    )
    if not files:
        raise FileNotFoundError(f"no video files ({', '.join(VIDEO_EXTENSIONS)}) in {folder}")
    return files


def read_video_file(
    path: str | os.PathLike, sample_rate: int, category: str | None = None
) -> Video:
    """Decode a video file with PyAV: all frames, and its audio track mixed to mono."""
    info = probe_video(path)
    audio = load_audio(path, sample_rate).numpy() if info.has_audio else None
    return Video(str(path), read_frames(path), info.fps, audio, sample_rate, category)


def category_from_path(path: str | os.PathLike, root: str | os.PathLike) -> str:
    """The category a video file under `root` names: its folder (`root/<category>/x.mp4`), or
    for a file directly in `root` its name up to the first "_" (`fire.mp4`, `fire_003.mp4`)."""
    relative = Path(path).relative_to(root)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem.split("_")[0]


def read_cached_clip(clip) -> Video:
    """A `sgvideo.data.cache.CachedClip`'s prepared frames and sound (memory-mapped)."""
    audio = clip.load_audio()
    return Video(
        clip.key, clip.load_frames(), clip.fps, audio, clip.sample_rate, clip.category_name
    )


def datamodule_from_options(options: dict[str, Any]):
    """A LandscapeDataModule from `--data` options, typed and checked against its signature."""
    from argparse import ArgumentError

    from jsonargparse import ArgumentParser

    from sgvideo.data.datamodule import LandscapeDataModule

    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(LandscapeDataModule, "data")
    try:
        return parser.instantiate(parser.parse_object({"data": options})).data
    except ArgumentError as error:
        raise ValueError(f"--data: {error}") from None


def generate_video(generator: VideoGenerator, sound: Video, seed: int) -> Video:
    """The generator's video for `sound`'s audio, at `sound`'s frame rate."""
    if sound.audio is None:
        raise ValueError(f"{sound.name} has no sound to generate a video from")
    frames = generator(torch.from_numpy(np.array(sound.audio)), sound.sample_rate, sound.fps, seed)
    if frames.dim() != 4 or frames.shape[1] != 3:
        raise ValueError(f"the generator must return frames 't 3 h w', got {tuple(frames.shape)}")
    pixels = rearrange(to_uint8(frames.detach().cpu()), "t c h w -> t h w c").numpy()
    name = f"generated:{sound.name}#{seed}"
    return Video(name, pixels, sound.fps, sound.audio, sound.sample_rate, sound.category)


def model_frames(frames: np.ndarray, resolution: int | None) -> torch.Tensor:
    """uint8 "t h w 3" -> "t 3 r r" in [-1, 1]: centre square crop, bilinear (antialiased)
    resize to `resolution`; None keeps the frames' own size (and shape)."""
    x = to_unit_range(frames)
    if resolution is None:
        return x
    h, w = x.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    x = x[..., top : top + side, left : left + side]
    if side != resolution:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", antialias=True)
    return x.clamp(-1, 1)
