"""sgvideo.data.synth: deterministic clips, real mp4s, pictures that follow their sounds."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sgvideo.audio import load_audio
from sgvideo.data.synth import (
    CATEGORIES,
    frame_loudness,
    main,
    synthesize_clip,
    write_synthetic_dataset,
)
from sgvideo.video_io import probe_video, read_frames

RATE, FPS = 44100, 15.0  # the defaults synth_root is written with
SYNTH_FRAMES = round(2.5 * FPS)  # synth_root: 2.5 s clips


def test_categories():
    assert set(CATEGORIES) >= {"rain", "fire", "thunder", "water", "wind"}
    assert list(CATEGORIES) == sorted(CATEGORIES)


def test_clip_shapes_and_determinism():
    frames, audio = synthesize_clip("fire", seconds=1.0, size=32, seed=(0, 1, 2))
    assert frames.shape == (15, 32, 32, 3) and frames.dtype == np.uint8
    assert audio.shape == (RATE,) and audio.dtype == np.float32
    assert 0.1 < np.abs(audio).max() <= 1.0
    again = synthesize_clip("fire", seconds=1.0, size=32, seed=(0, 1, 2))
    assert np.array_equal(frames, again[0]) and np.array_equal(audio, again[1])
    other = synthesize_clip("fire", seconds=1.0, size=32, seed=(1, 1, 2))
    assert not np.array_equal(audio, other[1])


def test_same_seed_same_files_whatever_else_is_written(tmp_path):
    kwargs = {"clips_per_category": 1, "seconds": 0.6, "size": 16}
    alone = write_synthetic_dataset(tmp_path / "a", categories=["rain"], **kwargs)
    both = write_synthetic_dataset(tmp_path / "b", categories=["wind", "rain"], **kwargs)
    assert [p.relative_to(tmp_path / "a").as_posix() for p in alone] == ["rain/rain_000.mp4"]
    assert [p.relative_to(tmp_path / "b").as_posix() for p in both] == [
        "wind/wind_000.mp4",
        "rain/rain_000.mp4",
    ]
    assert alone[0].read_bytes() == both[1].read_bytes()
    reseeded = write_synthetic_dataset(tmp_path / "c", categories=["rain"], seed=1, **kwargs)
    assert reseeded[0].read_bytes() != alone[0].read_bytes()


def test_files_decode_with_both_streams(synth_root):
    paths = sorted(synth_root.glob("*/*.mp4"))
    assert len(paths) == 2 * len(CATEGORIES)
    assert sorted(p.name for p in synth_root.iterdir()) == sorted(CATEGORIES)
    for path in paths:
        info = probe_video(path)
        assert info.has_audio and info.sample_rate == RATE
        assert (info.width, info.height, info.fps) == (32, 32, FPS)
        assert read_frames(path).shape == (SYNTH_FRAMES, 32, 32, 3)
        wave = load_audio(path, RATE)
        assert abs(len(wave) - round(SYNTH_FRAMES / FPS * RATE)) < 1024
        assert float(wave.abs().max()) > 0.05


def test_thunder_brightest_frame_is_the_loudest_window(synth_root):
    for path in sorted((synth_root / "thunder").glob("*.mp4")):
        frames = read_frames(path).astype(np.float64)
        audio = load_audio(path, RATE).numpy()
        brightness = frames.mean(axis=(1, 2, 3))
        loudness = frame_loudness(audio, RATE, len(frames), FPS)
        assert brightness.argmax() == loudness.argmax()
        # A flash, not noise: the brightest frame stands well above the median frame.
        assert brightness.max() > np.median(brightness) + 40


def test_fire_glow_follows_the_crackle():
    frames, audio = synthesize_clip("fire", seconds=2.0, size=32, seed=3)
    loudness = frame_loudness(audio, RATE, len(frames), FPS)
    glow = frames.astype(np.float64).mean(axis=(1, 2, 3))
    assert np.corrcoef(glow, loudness)[0, 1] > 0.95


def test_wind_clouds_move_with_the_sound():
    frames, audio = synthesize_clip("wind", seconds=2.0, size=32, seed=4)
    loudness = frame_loudness(audio, RATE, len(frames), FPS)
    sky = frames[:, :12].astype(np.float64)
    motion = np.abs(np.diff(sky, axis=0)).mean(axis=(1, 2, 3))
    assert np.corrcoef(motion, loudness[1:])[0, 1] > 0.9


def test_categories_differ_in_mean_colour(synth_root):
    def mean_colour(category: str) -> np.ndarray:
        clips = sorted((synth_root / category).glob("*.mp4"))
        return np.mean([read_frames(p).mean(axis=(0, 1, 2)) for p in clips], axis=0)

    means = {name: mean_colour(name) for name in CATEGORIES}
    for a, b in itertools.combinations(CATEGORIES, 2):
        assert np.linalg.norm(means[a] - means[b]) > 25, (a, b, means[a], means[b])


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown categories \\['snow'\\]"):
        write_synthetic_dataset(tmp_path, categories=["snow"])
    with pytest.raises(ValueError, match="even number of pixels"):
        write_synthetic_dataset(tmp_path, size=33)
    with pytest.raises(ValueError, match="clips_per_category must be at least 1"):
        write_synthetic_dataset(tmp_path, clips_per_category=0)
    with pytest.raises(ValueError, match="at least one frame"):
        synthesize_clip("rain", seconds=0.01)


def test_main(tmp_path, capsys):
    out = tmp_path / "synth"
    argv = ["--out", str(out), "--categories", "water", "--clips-per-category", "2"]
    assert main([*argv, "--seconds", "0.4", "--size", "16", "--fps", "10"]) == 0
    assert sorted(p.name for p in (out / "water").iterdir()) == ["water_000.mp4", "water_001.mp4"]
    assert probe_video(out / "water" / "water_000.mp4").num_frames == 4
    assert "wrote 2 clips" in capsys.readouterr().out

    bad = tmp_path / "bad"
    assert main(["--out", str(bad), "--size", "17"]) == 2
    assert "sgvideo synth-data: error: size must be an even number" in capsys.readouterr().err
    assert main(["--out", str(bad), "--fps", "0"]) == 2
    assert "fps must be positive" in capsys.readouterr().err
    assert not bad.exists()
    assert main(["--out", str(out), "--categories", "rain", "snow"]) == 2
    assert "unknown categories ['snow']" in capsys.readouterr().err
    assert main(["--help"]) == 0
    assert "--clips_per_category" in capsys.readouterr().out
