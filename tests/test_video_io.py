"""sgvideo.video_io: mp4 round trips (frames, fps, audio, alignment), atomic writes, errors."""

from __future__ import annotations

import av
import numpy as np
import pytest
import soundfile as sf
import torch

from sgvideo.audio import load_audio
from sgvideo.video_io import (
    VideoError,
    VideoWriter,
    iter_frames,
    probe_video,
    read_frames,
    write_video,
)

RATE = 44100


def moving_gradient(num_frames: int, height: int, width: int) -> np.ndarray:
    """Smooth frames "t h w 3" (easy for h264, so decoded values stay close)."""
    t = np.arange(num_frames)[:, None, None]
    y = np.arange(height)[None, :, None]
    x = np.arange(width)[None, None, :]
    red = 40 + 150 * x / width + 2 * t
    green = 60 + 120 * y / height
    blue = np.broadcast_to(100 + 5 * t, red.shape)
    return np.stack(np.broadcast_arrays(red, green, blue), axis=-1).astype(np.uint8)


def test_round_trip_in_batches(tmp_path):
    fps, frames = 12, moving_gradient(24, 32, 48)
    audio = np.zeros(2 * RATE, np.float32)
    click = RATE // 2
    audio[click] = 0.9  # a click at 0.5 s
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, fps, (32, 48), audio=audio, sample_rate=RATE) as writer:
        for batch in np.array_split(frames, 3):
            writer.write(torch.from_numpy(batch) if len(batch) == 8 else batch)
        assert writer.frames_written == 24
    with av.open(str(path)) as container:
        assert len(container.streams.video) == 1 and len(container.streams.audio) == 1
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.audio[0].codec_context.name == "aac"
    info = probe_video(path)
    assert (info.width, info.height, info.fps, info.num_frames) == (48, 32, 12.0, 24)
    assert info.has_audio and info.sample_rate == RATE
    assert info.duration == pytest.approx(2.0, abs=0.05)

    decoded = read_frames(path)
    assert decoded.shape == frames.shape and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - frames).mean() < 3.0
    times = [t for t, _ in iter_frames(path)]
    np.testing.assert_allclose(times, np.arange(24) / fps, atol=1e-3)

    wave = load_audio(path, RATE)
    assert 0 <= len(wave) - len(audio) < 1024  # AAC rounds up to whole 1024-sample frames
    # The click is where it was written: priming samples are dropped on decode.
    assert abs(int(wave.abs().argmax()) - click) < 32


def test_audio_longer_and_shorter_than_the_video(tmp_path):
    frames = moving_gradient(10, 16, 16)  # 1 s at 10 fps
    for seconds in (0.5, 1.5):
        audio = np.full(round(seconds * RATE), 0.25, np.float32)
        path = write_video(tmp_path / f"{seconds}.mp4", frames, 10, audio, RATE)
        assert abs(len(load_audio(path, RATE)) - len(audio)) < 1024
        assert read_frames(path).shape[0] == 10


def test_video_only_and_fractional_fps(tmp_path):
    path = write_video(tmp_path / "mute.mp4", moving_gradient(6, 16, 16), fps=29.97)
    info = probe_video(path)
    assert not info.has_audio and info.sample_rate is None
    assert info.fps == pytest.approx(29.97, abs=1e-3) and info.num_frames == 6


def test_same_input_same_bytes(tmp_path):
    frames, audio = moving_gradient(15, 32, 32), np.sin(np.arange(RATE) / 7).astype(np.float32)
    a = write_video(tmp_path / "a.mp4", frames, 15, audio, RATE)
    b = write_video(tmp_path / "b.mp4", frames, 15, audio, RATE)
    assert a.read_bytes() == b.read_bytes()


def test_failure_leaves_nothing(tmp_path):
    path = tmp_path / "broken.mp4"
    with pytest.raises(RuntimeError, match="boom"), VideoWriter(path, 10, 16) as writer:
        writer.write(moving_gradient(3, 16, 16))
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    # A bad batch aborts the same way.
    with pytest.raises(ValueError, match=r"frames are \(8, 8\)"), VideoWriter(path, 10, 16) as w:
        w.write(moving_gradient(2, 8, 8))
    assert list(tmp_path.iterdir()) == []
    # An encoder error cleans up even without `with`.
    writer = VideoWriter(path, 10, 16, preset="no-such-preset")
    with pytest.raises(av.FFmpegError, match="no-such-preset"):
        writer.write(moving_gradient(1, 16, 16))
    assert list(tmp_path.iterdir()) == []


def test_missing_output_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="output folder does not exist"):
        write_video(tmp_path / "no" / "clip.mp4", moving_gradient(2, 16, 16), 10)


def test_bad_writer_arguments(tmp_path):
    with pytest.raises(ValueError, match="even height and width"):
        VideoWriter(tmp_path / "odd.mp4", 10, (15, 16))
    with pytest.raises(ValueError, match="fps must be positive"):
        VideoWriter(tmp_path / "fps.mp4", 0, 16)
    with pytest.raises(ValueError, match="mono 'samples'"):
        VideoWriter(tmp_path / "st.mp4", 10, 16, audio=np.zeros((2, 100), np.float32))
    with pytest.raises(ValueError, match="NaN or infinite"):
        VideoWriter(tmp_path / "nan.mp4", 10, 16, audio=np.full(100, np.nan, np.float32))
    with pytest.raises(ValueError, match="AAC cannot store 12345 Hz audio; use one of .*44100"):
        VideoWriter(tmp_path / "sr.mp4", 10, 16, audio=np.zeros(100, np.float32), sample_rate=12345)
    with pytest.raises(ValueError, match="must be uint8"):
        write_video(tmp_path / "f.mp4", np.zeros((2, 16, 16, 3), np.float32), 10)
    with pytest.raises(ValueError, match="'t h w 3'"):
        write_video(tmp_path / "s.mp4", np.zeros((16, 16, 3), np.uint8), 10)
    writer = VideoWriter(tmp_path / "closed.mp4", 10, 16)
    writer.close()
    with pytest.raises(VideoError, match="closed"):
        writer.write(moving_gradient(1, 16, 16))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["closed.mp4"]


def test_read_errors_name_the_file(tmp_path):
    missing = tmp_path / "missing.mp4"
    with pytest.raises(VideoError, match="video file not found") as info:
        read_frames(missing)
    assert str(missing) in str(info.value)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"not a video at all\n" * 50)
    with pytest.raises(VideoError, match="cannot open as a video") as info:
        probe_video(corrupt)
    assert str(corrupt) in str(info.value)
    sound = tmp_path / "sound.flac"
    sf.write(sound, np.zeros(1000, np.float32), RATE)
    with pytest.raises(VideoError, match="no video stream"):
        read_frames(sound)
