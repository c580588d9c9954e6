"""Sound-following measures: the frame judge, category accuracy and loudness-motion sync."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from sgvideo.cli import main as sgvideo
from sgvideo.judge import load_or_fit_judge
from sgvideo.metrics.category import CategoryAccuracy
from sgvideo.metrics.following import FollowingMeasures, drift_thirds, long_sound
from sgvideo.metrics.judge import FrameJudge
from sgvideo.metrics.sources import Video, datamodule_from_options
from sgvideo.metrics.sync import LoudnessMotionSync, frame_motion, loudness_motion_r, pearson_r

from .fixtures.data import SYNTH_DATA_FLAGS, SYNTH_DATA_OPTIONS

COLOURS = {"red": (0.8, -0.6, -0.6), "green": (-0.6, 0.7, -0.5), "blue": (-0.5, -0.4, 0.9)}


def _coloured_frames(n: int, seed: int, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """n frames per colour, "3n 3 size size": the colour plus noise; labels "3n"."""
    g = torch.Generator().manual_seed(seed)
    frames, labels = [], []
    for label, colour in enumerate(COLOURS.values()):
        base = torch.tensor(colour).view(1, 3, 1, 1)
        frames.append((base + 0.3 * torch.randn(n, 3, size, size, generator=g)).clamp(-1, 1))
        labels += [label] * n
    return torch.cat(frames), torch.tensor(labels)


def test_a_judge_fitted_on_separable_colours_scores_one() -> None:
    frames, labels = _coloured_frames(10, seed=0)
    judge = FrameJudge.fit(frames, labels, list(COLOURS), image_size=16)
    test, test_labels = _coloured_frames(20, seed=1, size=48)  # any size is judged
    accuracy = CategoryAccuracy(judge, len(COLOURS))
    accuracy.update(test, test_labels)
    assert accuracy.compute().item() == 1.0
    swapped = CategoryAccuracy(judge, len(COLOURS))  # the wrong category for every frame
    swapped.update(test, (test_labels + 1) % 3)
    assert swapped.compute().item() == 0.0
    assert judge.label("green") == 1 and judge.label("purple") is None


def test_judge_save_and_load_give_the_same_labels(tmp_path) -> None:
    frames, labels = _coloured_frames(6, seed=0)
    judge = FrameJudge.fit(frames, labels, list(COLOURS), image_size=16)
    judge.save(tmp_path / "j" / "judge.pt", {"test_accuracy": 1.0})
    loaded, info = FrameJudge.load(tmp_path / "j" / "judge.pt")
    probe = torch.rand(7, 3, 16, 16) * 2 - 1
    assert torch.equal(loaded(probe), judge(probe))
    assert (loaded.categories, loaded.image_size, info) == (
        list(COLOURS),
        16,
        {"test_accuracy": 1.0},
    )


def _by_brightness(frames: torch.Tensor) -> torch.Tensor:
    """A stand-in classifier: category 0 when the frame is dark, 1 when bright."""
    bright = frames.mean(dim=(1, 2, 3)) > 0
    return torch.stack([(~bright).float(), bright.float()], dim=1)


def test_category_accuracy_hand_computed_and_merged() -> None:
    frames = torch.tensor([-0.5, -0.5, 0.5, 0.5, 0.5]).view(5, 1, 1, 1).expand(5, 3, 2, 2)
    labels = torch.tensor([0, 1, 1, 1, 0])  # right: frames 0, 2, 3
    whole = CategoryAccuracy(_by_brightness, 3)
    whole.update(frames, labels)
    assert whole.compute().item() == pytest.approx(3 / 5, abs=1e-12)
    per = whole.per_category()
    assert per[0].item() == pytest.approx(1 / 2) and per[1].item() == pytest.approx(2 / 3)
    assert torch.isnan(per[2])
    first, second = CategoryAccuracy(_by_brightness, 3), CategoryAccuracy(_by_brightness, 3)
    first.update(frames[:2], labels[:2])
    second.update(frames[2:], labels[2:])
    first.merge_state(second)
    assert torch.equal(first.correct, whole.correct) and torch.equal(first.total, whole.total)
    with pytest.raises(ValueError, match=r"categories must lie in \[0, 3\)"):
        whole.update(frames[:1], torch.tensor([3]))
    with pytest.raises(ValueError, match="no frames were judged"):
        CategoryAccuracy(_by_brightness, 3).compute()


def test_the_judge_of_the_synthetic_world_is_fitted_once_and_cached(
    synth_root, synth_cache, tmp_path
) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(synth_cache, cache)
    options = {"root": str(synth_root), "cache_dir": str(cache), "num_workers": 0}
    options |= SYNTH_DATA_OPTIONS | {"test_fraction": 0.2, "val_fraction": 0.0}
    data = datamodule_from_options(options)
    judge, info = load_or_fit_judge(data)
    # the split trains on fire, rain, thunder and water; wind's two clips are both test clips
    assert judge.categories == ["fire", "rain", "thunder", "water"]
    assert (info["test_clips"], info["test_clips_of_unknown_categories"]) == (3, 2)
    assert info["test_accuracy"] >= 0.95 and info["train_accuracy"] == 1.0
    written = (cache / "judges").iterdir()
    path = next(written)
    assert info["path"] == str(path) and next(written, None) is None
    stamp = path.stat().st_mtime_ns
    again, info_again = load_or_fit_judge(data)  # read back, not refitted
    assert info_again == info and path.stat().st_mtime_ns == stamp
    probe = torch.rand(4, 3, 32, 32) * 2 - 1
    assert torch.equal(again(probe), judge(probe))


# ------------------------------------------------------------------ loudness-motion sync

SR, FPS = 1000, 10  # frame t's audio window is exactly samples [100 t, 100 t + 100)


def _clip_moving_with(levels: np.ndarray, motion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frames whose motion at t is motion[t] grey levels, and a sound whose loudness (RMS of
    frame t's window) is levels[t]: uint8 "t 8 8 3", float32 "samples"."""
    sign = np.where(np.arange(len(levels) * SR // FPS) % 2, 1.0, -1.0)
    wave = (np.repeat(levels, SR // FPS) * sign).astype(np.float32)
    grey = 10 + np.concatenate([[0], np.cumsum(motion[1:])])
    frames = np.repeat(grey, 8 * 8 * 3).reshape(len(levels), 8, 8, 3).astype(np.uint8)
    return frames, wave


LEVELS = np.array([0.1, 0.3, 0.2, 0.5, 0.1, 0.4, 0.4, 0.2, 0.6, 0.3, 0.1, 0.5])


def test_a_clip_whose_motion_is_its_loudness_gives_r_one() -> None:
    frames, wave = _clip_moving_with(LEVELS, np.round(LEVELS * 10))
    np.testing.assert_array_equal(frame_motion(frames), np.round(LEVELS[1:] * 10))
    assert loudness_motion_r(frames, wave, SR, FPS) == pytest.approx(1.0, abs=1e-9)
    frames, wave = _clip_moving_with(LEVELS, np.round((0.7 - LEVELS) * 10))
    assert loudness_motion_r(frames, wave, SR, FPS) == pytest.approx(-1.0, abs=1e-9)


def test_pearson_r_hand_computed() -> None:
    # a = (1, 2, 3), b = (1, 3, 2): centred (-1, 0, 1) and (-1, 1, 0) -> r = 1 / 2
    assert pearson_r([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5, abs=1e-12)
    assert pearson_r([1, 1, 1], [1, 3, 2]) is None


def _batch(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frames).permute(0, 3, 1, 2)[None]


def test_sync_metric_averages_videos_and_counts_undefined_ones() -> None:
    follows, wave = _clip_moving_with(LEVELS, np.round(LEVELS * 10))
    opposes, wave_b = _clip_moving_with(LEVELS, np.round((0.7 - LEVELS) * 10))
    still = np.full_like(follows, 50)
    metric = LoudnessMotionSync()
    metric.update(_batch(follows), torch.from_numpy(wave)[None], SR, FPS)
    metric.update(_batch(still), torch.from_numpy(wave)[None], SR, FPS)
    other = LoudnessMotionSync()
    other.update(_batch(opposes), torch.from_numpy(wave_b)[None], SR, FPS)
    metric.merge_state(other)
    assert metric.compute().item() == pytest.approx(0.0, abs=1e-9)  # (1 + -1) / 2
    assert (metric.count.item(), metric.undefined.item()) == (2, 1)
    with pytest.raises(ValueError, match="no video had a defined r"):
        only_still = LoudnessMotionSync()
        only_still.update(_batch(still), torch.from_numpy(wave)[None], SR, FPS)
        only_still.compute()
    with pytest.raises(ValueError, match="waveforms 'b samples' for 1 videos"):
        metric.update(_batch(still), torch.zeros(2, 10), SR, FPS)


def test_judge_fit_command(synth_root, synth_cache, tmp_path, capsys) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(synth_cache, cache)
    data = [f"--data.root={synth_root}", f"--data.cache_dir={cache}", "--data.test_fraction=0.2"]
    data += ["--data.val_fraction=0.0", "--data.num_workers=0"]
    data += SYNTH_DATA_FLAGS
    assert sgvideo(["judge", "fit", *data]) == 0
    out = capsys.readouterr().out
    assert "frame judge (fire, rain, thunder, water)" in out and str(cache / "judges") in out
    assert sgvideo(["judge", *data]) == 2
    assert "usage: sgvideo judge fit" in capsys.readouterr().err


# ------------------------------------------------------------------ drift


def test_drift_thirds_of_a_constructed_video() -> None:
    assert drift_thirds(10) == (slice(0, 3), slice(7, 10))
    with pytest.raises(ValueError, match="at least 3 frames"):
        drift_thirds(2)
    frames, labels = _coloured_frames(10, seed=0)
    judge = FrameJudge.fit(frames, labels, list(COLOURS), image_size=16)
    red, blue = (np.array(c) * 127.5 + 127.5 for c in (COLOURS["red"], COLOURS["blue"]))
    # 12 s at 1 fps: red for 5 s, then blue; labelled red, so the last third is all wrong
    pixels = np.stack([red] * 5 + [blue] * 7).astype(np.uint8)[:, None, None, :]
    video = Video("red turning blue", np.tile(pixels, (1, 16, 16, 1)), 1.0, None, 8000, "red")
    measures = FollowingMeasures(judge, sync=False, drift_seconds=12.0)
    measures.update_drift(video)
    assert measures.compute()["drift_accuracy"] == {"first third": 1.0, "last third": 0.0}
    measures.update_drift(Video("short", video.frames[:11], 1.0, None, 8000, "red"))
    assert measures.skip_counts() == {"too_short_for_drift": 1}
    assert "short: lasts 11.00 s, under the drift split's 12 s" in measures.notes()[0]


def test_long_sound_joins_sounds_until_long_enough() -> None:
    empty = np.zeros((0, 1, 1, 3), np.uint8)
    pieces = [Video(f"{i}", empty, 10.0, np.full(300, i, np.float32), 100, "rain") for i in (1, 2)]
    sound = long_sound(pieces, seconds=10.0, category="rain")
    assert len(sound.audio) == 1200 and sound.category == "rain"  # 1, 2, 1, 2: 12 s >= 10 s
    np.testing.assert_array_equal(sound.audio[::300], [1, 2, 1, 2])
