"""Decode a video clip into training frames: resized, centre-cropped, resampled to a fixed fps.

Timing convention (the one `sgvideo.audio` uses): output frame k is shown during
[k / fps, (k + 1) / fps) and shows the source frame on screen at its centre, (k + 0.5) / fps.
Time 0 is the start of the audio stream, so that audio sample i (as `load_audio` returns it)
and frame floor(i / sample_rate * fps) are simultaneous even when a container starts its video
and audio streams at different times.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np


def _scaled_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) with the shorter side equal to `size`, aspect ratio kept."""
    if width >= height:
        return max(size, round(width * size / height)), size
    return size, max(size, round(height * size / width))


def _to_square(frame: av.VideoFrame, size: int) -> np.ndarray:
    """Resize (shorter side to `size`, area filter) and centre-crop to "size size 3" uint8 RGB."""
    width, height = _scaled_size(frame.width, frame.height, size)
    rgb = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA")
    array = rgb.to_ndarray()
    top, left = (height - size) // 2, (width - size) // 2
    return np.ascontiguousarray(array[top : top + size, left : left + size])


def resampled_frames(path: str | os.PathLike, size: int, fps: float) -> Iterator[np.ndarray]:
    """Yield the clip's frames "size size 3" uint8 at `fps`, streaming (constant memory).

    Frames before the first decoded one repeat it; the clip ends where its last frame's
    display time ends. Raises ValueError for a file without a video stream or frames, and
    PyAV's errors for files it cannot read.
    """
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"{path}: no video stream in the file")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        origin = 0.0
        if container.streams.audio and container.streams.audio[0].start_time is not None:
            audio = container.streams.audio[0]
            origin = float(audio.start_time * audio.time_base)
        step = 1.0 / float(stream.average_rate or stream.guessed_rate or fps)
        emitted = 0
        shown: av.VideoFrame | None = None
        square: np.ndarray | None = None
        end = origin
        for index, frame in enumerate(container.decode(stream)):
            start = frame.time if frame.time is not None else index * step
            while shown is not None and origin + (emitted + 0.5) / fps < start:
                if square is None:
                    square = _to_square(shown, size)
                yield square
                emitted += 1
            shown, square = frame, None
            duration = float(frame.duration * frame.time_base) if frame.duration else step
            end = start + duration
        if shown is None:
            raise ValueError(f"{path}: the video stream has no frames")
        while emitted == 0 or origin + (emitted + 0.5) / fps < end:
            if square is None:
                square = _to_square(shown, size)
            yield square
            emitted += 1


def _npy_header(shape: tuple[int, ...]) -> bytes:
    buffer = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False}
    np.lib.format.write_array_header_1_0(buffer, {**header, "shape": shape})
    return buffer.getvalue()


def write_frames_npy(frames: Iterator[np.ndarray], path: str | os.PathLike) -> int:
    """Stream "h w 3" uint8 frames into one "n h w 3" .npy file; returns n.

    The header is written first with n = 0 and rewritten at the end: numpy pads headers so
    that the first dimension can grow in place without changing the header's length.
    """
    count, shape, header_length = 0, None, 0
    with Path(path).open("wb") as handle:
        for frame in frames:
            if shape is None:
                shape = frame.shape
                header_length = handle.write(_npy_header((0, *shape)))
            handle.write(frame.tobytes())
            count += 1
        if shape is None:
            raise ValueError("no frames to write")
        header = _npy_header((count, *shape))
        if len(header) != header_length:
            raise RuntimeError("the .npy header changed length; numpy no longer pads it")
        handle.seek(0)
        handle.write(header)
    return count
