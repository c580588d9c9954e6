"""Small PyAV helpers: write mp4 (h264 + AAC) from frames and a waveform, read frames back.

Writing is streamed (frames arrive in batches, audio is interleaved as the video advances) and
atomic: the file appears under its name only once it is complete.

AAC note: the encoder adds 1024 priming samples at the start (the mp4 edit list tells decoders to
drop them, and FFmpeg/PyAV do) and pads the last frame up to 1024 samples. Read back with
`sgvideo.audio.load_audio`, the audio starts where it started (within a few samples of encoder
delay) and is at most 1023 samples longer than what was written.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np
import torch

from sgvideo.files import atomic_path


class VideoError(ValueError):
    """A video file that cannot be read, or frames that cannot be written."""


def _as_fraction(fps: float | Fraction) -> Fraction:
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be positive and finite, got {fps}")
    return Fraction(fps).limit_denominator(100_000)


def _as_uint8_frames(frames: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().numpy()
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be 't h w 3', got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frames.dtype}")
    return frames


class VideoWriter:
    """Write an mp4 (h264 yuv420p video, optional mono AAC audio) frame batch by frame batch.

    `size` is the frame size, an int for square frames or (height, width), both even (yuv420p).
    `audio` is the whole mono waveform "samples" (float in [-1, 1], clipped), muxed alongside the
    video as it is written; whatever audio is left is written at `close()`. `crf` and `preset`
    are x264's quality and speed. The same frames and audio give the same bytes. Use as a context
    manager: on an exception nothing is left on disk. A missing output folder raises
    FileNotFoundError at construction.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float,
        size: int | tuple[int, int],
        audio: np.ndarray | torch.Tensor | None = None,
        sample_rate: int = 44100,
        crf: int = 18,
        preset: str = "veryfast",
    ) -> None:
        height, width = (size, size) if isinstance(size, int) else size
        if height <= 0 or width <= 0 or height % 2 or width % 2:
            raise ValueError(f"h264 (yuv420p) needs a positive even height and width, got {size}")
        self.size = (height, width)
        self.fps = _as_fraction(fps)
        self.sample_rate = int(sample_rate)
        self.frames_written = 0
        self._closed = False
        self._audio = None if audio is None else _as_mono_float(audio)
        aac_rates = av.Codec("aac", "w").audio_rates or ()
        if self._audio is not None and self.sample_rate not in aac_rates:
            rates = ", ".join(map(str, sorted(aac_rates)))
            raise ValueError(f"AAC cannot store {self.sample_rate} Hz audio; use one of {rates}")
        self._audio_pos = 0
        self.path = Path(path)
        with contextlib.ExitStack() as stack:  # undone if anything below fails
            tmp = stack.enter_context(atomic_path(path))
            self._container = av.open(str(tmp), "w")
            stack.callback(self._container.close)
            self._video = self._container.add_stream("libx264", rate=self.fps)
            self._video.width, self._video.height = width, height
            self._video.pix_fmt = "yuv420p"
            # MB-tree rate control off: with it, x264 sometimes encodes equal frames differently.
            options = {"crf": str(crf), "preset": preset, "x264-params": "mbtree=0"}
            self._video.options = options
            self._sound = None
            if self._audio is not None:
                rate = self.sample_rate
                self._sound = self._container.add_stream("aac", rate=rate, layout="mono")
            self._stack = stack.pop_all()

    def write(self, frames: np.ndarray | torch.Tensor) -> None:
        """Append frames "t h w 3" uint8 RGB."""
        if self._closed:
            raise VideoError(f"{self.path}: the writer is closed")
        frames = _as_uint8_frames(frames)
        if frames.shape[1:3] != self.size:
            shape = frames.shape[1:3]
            raise ValueError(f"frames are {shape} (h, w), the writer's size is {self.size}")
        try:
            for rgb in frames:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                frame.pts = self.frames_written
                frame.time_base = 1 / self.fps
                self._container.mux(self._video.encode(frame))
                self.frames_written += 1
            self._write_audio(round(self.frames_written / self.fps * self.sample_rate))
        except BaseException:
            self.abort()  # an encoder error leaves no half-written file, with or without `with`
            raise

    def _write_audio(self, stop: int) -> None:
        if self._sound is None:
            return
        stop = min(stop, len(self._audio))
        if stop <= self._audio_pos:
            return
        chunk = self._audio[self._audio_pos : stop]
        frame = av.AudioFrame.from_ndarray(chunk[None], format="fltp", layout="mono")
        frame.sample_rate = self.sample_rate
        frame.pts = self._audio_pos
        frame.time_base = Fraction(1, self.sample_rate)
        self._container.mux(self._sound.encode(frame))
        self._audio_pos = stop

    def close(self) -> None:
        """Flush the encoders and move the finished file into place."""
        if self._closed:
            return
        self._closed = True
        with self._stack:
            self._write_audio(len(self._audio) if self._audio is not None else 0)
            self._container.mux(self._video.encode(None))
            if self._sound is not None:
                self._container.mux(self._sound.encode(None))

    def abort(self) -> None:
        """Stop writing and leave nothing on disk."""
        if self._closed:
            return
        self._closed = True
        error = VideoError(f"{self.path}: writing aborted")
        self._stack.__exit__(VideoError, error, None)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _as_mono_float(audio: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().cpu().numpy()
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"audio must be mono 'samples', got shape {audio.shape}")
    if not np.isfinite(audio).all():
        raise ValueError("audio contains NaN or infinite samples")
    return np.clip(audio, -1.0, 1.0)


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray | torch.Tensor,
    fps: float,
    audio: np.ndarray | torch.Tensor | None = None,
    sample_rate: int = 44100,
    crf: int = 18,
    preset: str = "veryfast",
) -> Path:
    """Write frames "t h w 3" uint8 (and an optional mono waveform) as one mp4, atomically.

    Options as for `VideoWriter`.
    """
    frames = _as_uint8_frames(frames)
    size = frames.shape[1:3]
    with VideoWriter(path, fps, size, audio, sample_rate, crf=crf, preset=preset) as out:
        out.write(frames)
    return Path(path)


@dataclass(frozen=True)
class VideoInfo:
    """What a container says about its first video (and audio) stream."""

    width: int
    height: int
    fps: float
    num_frames: int  # from the container; 0 when it does not say
    duration: float  # seconds; 0.0 when unknown
    has_audio: bool
    sample_rate: int | None


@contextlib.contextmanager
def _open_video(path: str | os.PathLike) -> Iterator[av.container.InputContainer]:
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"video file not found: {path}")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError) as error:
        raise VideoError(f"{path}: cannot open as a video (corrupt?): {error}") from error
    with container:
        if not container.streams.video:
            raise VideoError(f"{path}: no video stream in the file")
        try:
            yield container
        except av.FFmpegError as error:
            raise VideoError(f"{path}: cannot decode the video (corrupt?): {error}") from error


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Read the container header only; raises VideoError for missing/corrupt/video-less files."""
    with _open_video(path) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        rate = video.average_rate or video.guessed_rate or 0
        duration = float(container.duration / av.time_base) if container.duration else 0.0
        return VideoInfo(
            width=video.codec_context.width,
            height=video.codec_context.height,
            fps=float(rate),
            num_frames=int(video.frames),
            duration=duration,
            has_audio=audio is not None,
            sample_rate=audio.codec_context.sample_rate if audio is not None else None,
        )


def iter_frames(path: str | os.PathLike) -> Iterator[tuple[float, np.ndarray]]:
    """Decode the first video stream: yields (start time in seconds, "h w 3" uint8 RGB)."""
    with _open_video(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield float(frame.time or 0.0), frame.to_ndarray(format="rgb24")


def read_frames(path: str | os.PathLike) -> np.ndarray:
    """All frames of the first video stream as "t h w 3" uint8 RGB."""
    frames = [rgb for _, rgb in iter_frames(path)]
    if not frames:
        raise VideoError(f"{path}: the video stream has no frames")
    return np.stack(frames)
