"""What the inference tools read and write: checked output paths, devices, seeded runs, images
in and out, GIFs, audio muxed into videos."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
import torchvision.transforms.functional as TF
from einops import rearrange
from PIL import Image
from torch import Tensor

from sgvideo.audio import resample
from sgvideo.errors import describe
from sgvideo.files import atomic_path, check_output_file, require_file
from sgvideo.pixels import frames_to_uint8

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv")


MUX_FALLBACK_RATE = 44100


MAX_FPS = 240.0  # a bound on the work one command can ask for (--fps 1e9: 3e9 frames)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's global RNGs inside the block, leaving the caller's RNG state untouched."""
    with torch.random.fork_rng(devices=range(torch.cuda.device_count())):
        torch.manual_seed(seed)
        yield


def check_output_path(path: str | os.PathLike, suffixes: tuple[str, ...], what: str) -> Path:
    """An output file path with one of `suffixes` that can be written (`check_output_file`)."""
    path = Path(path).expanduser()
    if path.suffix.lower() not in suffixes:
        raise ValueError(f"{what} {path} must end in one of {', '.join(suffixes)}")
    return check_output_file(path, what)


def check_frames_dir(path: str | os.PathLike) -> Path:
    """A folder for the PNG frames: it may not exist yet, but nothing on its way is a file."""
    path = Path(path).expanduser()
    for folder in (path, *path.parents):
        if folder.exists():
            if not folder.is_dir():
                raise ValueError(f"--frames-dir {path}: {folder} is a file, not a folder")
            return path
    return path


def check_fps(fps: float) -> float:
    """`fps` if it is a finite rate in (0, MAX_FPS]."""
    if not (math.isfinite(fps) and 0 < fps <= MAX_FPS):
        raise ValueError(f"--fps must be in (0, {MAX_FPS:g}] frames per second, got {fps}")
    return fps


def resolve_device(device: str) -> torch.device:
    """`device` as a torch device; a clear error when CUDA is asked for but missing."""
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"unknown device {device!r}: {error}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: CUDA is not available on this machine")
    return resolved


def muxable_audio(wave: Tensor, sample_rate: int) -> tuple[Tensor, int]:
    """The waveform at a rate AAC can store: as is, or resampled to 44.1 kHz."""
    if sample_rate in (av.Codec("aac", "w").audio_rates or ()):
        return wave, sample_rate
    return resample(wave, sample_rate, MUX_FALLBACK_RATE), MUX_FALLBACK_RATE


class GifWriter:
    """An animated GIF written frame batch by frame batch (PyAV), atomically."""

    def __init__(self, path: Path, fps: float, size: int) -> None:
        self._stack = contextlib.ExitStack()
        tmp = self._stack.enter_context(atomic_path(path))
        self._container = av.open(str(tmp), "w", format="gif")
        self._stack.callback(self._container.close)
        self._fps = Fraction(fps).limit_denominator(1000)
        self._stream = self._container.add_stream("gif", rate=self._fps)
        self._stream.width = self._stream.height = size
        self._stream.pix_fmt = "rgb8"
        self._count = 0

    def write(self, frames: np.ndarray) -> None:
        for rgb in frames:
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = self._count, 1 / self._fps
            self._container.mux(self._stream.encode(frame))
            self._count += 1

    def __enter__(self) -> GifWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self._container.mux(self._stream.encode(None))
        self._stack.__exit__(exc_type, exc, tb)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as "h w 3" uint8 RGB; a missing, unreadable or oversized (more pixels
    than PIL's decompression-bomb limit) file is a one-line error naming it."""
    path = require_file(path, "image")
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except Image.DecompressionBombError as error:
        raise ValueError(f"{path}: the image is too large to read: {error}") from None
    except (OSError, SyntaxError, ValueError) as error:  # PIL's ways of saying "corrupt"
        raise ValueError(f"{path}: cannot read as an image: {describe(error)}") from None


def image_tensor(rgb: np.ndarray, size: int) -> Tensor:
    """ "h w 3" uint8 -> "3 size size" in [-1, 1] (shorter side resized, centre crop)."""
    x = rearrange(torch.from_numpy(np.array(rgb)), "h w c -> c h w").float() / 127.5 - 1.0
    x = TF.resize(x, size, antialias=True)
    return TF.center_crop(x, size).clamp(-1, 1)


def strip(images: Sequence[Tensor]) -> np.ndarray:
    """Images "3 h w" in [-1, 1] side by side: "h (k w) 3" uint8."""
    pixels = frames_to_uint8(torch.stack([img.detach().cpu().float() for img in images]))
    return np.ascontiguousarray(rearrange(pixels, "k h w c -> h (k w) c"))


def pil_format(path: Path) -> str:
    return {".jpg": "JPEG", ".jpeg": "JPEG"}.get(path.suffix.lower(), path.suffix[1:].upper())
