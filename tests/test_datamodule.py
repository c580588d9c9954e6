"""LandscapeDataModule on the synthetic dataset: items, alignment, splits, loaders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sgvideo.audio import LogMel, MelSettings
from sgvideo.data.datamodule import LandscapeDataModule
from sgvideo.data.dataset import ClipDataset
from tests.fixtures.data import SYNTH_DATA_OPTIONS

CATEGORIES = ["fire", "rain", "thunder", "water", "wind"]
SMALL_MEL = MelSettings(n_mels=32, n_fft=512, hop_length=256)


def _datamodule(root: Path, cache: Path, **kwargs) -> LandscapeDataModule:
    args = {**SYNTH_DATA_OPTIONS, "mel": SMALL_MEL, "num_frames": 4, "batch_size": 2}
    args |= {"num_workers": 0, **kwargs}
    return LandscapeDataModule(str(root), str(cache), **args)


@pytest.fixture(scope="module")
def dm(synth_root: Path, synth_cache: Path) -> LandscapeDataModule:
    datamodule = _datamodule(synth_root, synth_cache)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def test_categories_are_known_right_after_init(synth_root: Path, tmp_path: Path) -> None:
    datamodule = _datamodule(synth_root, tmp_path / "no_cache_yet")
    assert datamodule.categories == CATEGORIES
    assert not (tmp_path / "no_cache_yet").exists()  # nothing decoded or written yet


def test_validation_item_shapes_ranges_and_values(dm: LandscapeDataModule) -> None:
    clip = dm.clips["val"][0]
    item = dm.datasets["val"][0]
    assert item["frames"].shape == (4, 3, 32, 32) and item["frames"].dtype == torch.float32
    assert item["frames"].min() >= -1.0 and item["frames"].max() <= 1.0
    assert item["audio"].shape == (4, 22050)  # 0.5 s per frame at 44.1 kHz
    assert item["waveform"].shape == (88200,)
    assert item["mel"].shape == (4, 32, 22050 // 256 + 1)
    assert item["mel"].min() >= 0.0 and item["mel"].max() <= 1.0 and item["mel"].std() > 0
    assert (item["category"], item["category_name"]) == (clip.category, clip.category_name)
    assert CATEGORIES[item["category"]] == item["category_name"]
    assert item["path"] == clip.path and Path(item["path"]).is_file()

    # Reference: the centre window of the cached arrays.
    start = (clip.duration - 2.0) / 2
    cached = clip.load_frames()
    index = np.floor((start + (np.arange(4) + 0.5) * 0.5) * 30).astype(int)
    expected = torch.from_numpy(cached[index].astype(np.float32) / 127.5 - 1).permute(0, 3, 1, 2)
    torch.testing.assert_close(item["frames"], expected)
    first = round(start * 44100)
    torch.testing.assert_close(
        item["waveform"], torch.from_numpy(clip.load_audio()[first : first + 88200].copy())
    )
    torch.testing.assert_close(item["audio"].flatten(), item["waveform"])  # windows tile it
    torch.testing.assert_close(item["mel"], LogMel(44100, 512, 256, 32)(item["audio"]))
    assert torch.equal(dm.datasets["val"][0]["frames"], item["frames"])  # deterministic


def test_thunder_flash_is_on_the_loudest_window(dm: LandscapeDataModule) -> None:
    """Synthetic thunder (15 fps) flashes its sky on each frame as brightly as that frame's
    audio is loud. Sampled with one window per synthetic frame (30 frames over 2 s; the centre
    window of a 2.53 s clip starts exactly at frame 4), after mp4 encoding, decoding, caching
    at 30 fps and window sampling, the brightest frame must be the loudest window."""
    thunder = [c for split in dm.clips.values() for c in split if c.category_name == "thunder"]
    assert len(thunder) == 2
    mel = SMALL_MEL.log_mel()
    dataset = ClipDataset(thunder, 30, 2.0, mel, random_window=False)
    for item in dataset:
        brightness = item["frames"].mean(dim=(1, 2, 3))
        loudness = item["audio"].pow(2).mean(dim=-1)
        assert brightness.argmax() == loudness.argmax()
        assert loudness.max() > 3 * loudness.median()  # there is a boom in the window


def test_training_windows_are_random_within_the_clip(dm: LandscapeDataModule) -> None:
    dataset = dm.datasets["train"]
    clip = dataset.clips[0]
    starts = torch.tensor([dataset.window_start(clip) for _ in range(200)])
    assert starts.min() >= 0 and starts.max() <= clip.duration - 2.0
    assert starts.std() > 0.1
    torch.manual_seed(5)
    start = dataset.window_start(clip)
    torch.manual_seed(5)
    item = dataset[0]
    first = round(start * 44100)
    audio = torch.from_numpy(clip.load_audio()[first : first + 88200].copy())
    torch.testing.assert_close(item["waveform"], audio)
    index = np.floor((start + (np.arange(4) + 0.5) * 0.5) * 30).astype(int)
    expected = clip.load_frames()[index].astype(np.float32) / 127.5 - 1
    torch.testing.assert_close(item["frames"], torch.from_numpy(expected).permute(0, 3, 1, 2))


def test_short_clips_repeat_the_last_frame_and_pad_the_audio(dm: LandscapeDataModule) -> None:
    clip = dm.clips["val"][0]
    mel = LogMel(44100, 512, 256, 32)
    item = ClipDataset([clip], num_frames=6, clip_seconds=3.0, mel=mel)[0]
    last = torch.from_numpy(clip.load_frames()[-1].astype(np.float32) / 127.5 - 1).permute(2, 0, 1)
    torch.testing.assert_close(item["frames"][-1], last)  # 2.75 s is past the clip's end
    assert item["waveform"].shape == (132300,)
    tail = item["waveform"][clip.num_samples :]
    assert len(tail) > 0 and torch.equal(tail, torch.zeros_like(tail))
    torch.testing.assert_close(
        item["waveform"][: clip.num_samples], torch.from_numpy(clip.load_audio().copy())
    )


def test_single_frame_windows(dm: LandscapeDataModule) -> None:
    clip = dm.clips["val"][0]
    item = ClipDataset([clip], num_frames=1, clip_seconds=0.5, mel=LogMel(44100, 512, 256, 32))[0]
    assert item["frames"].shape == (1, 3, 32, 32) and item["audio"].shape == (1, 22050)
    index = int((clip.duration / 2) * 30)  # the centre of the clip
    expected = clip.load_frames()[index].astype(np.float32) / 127.5 - 1
    torch.testing.assert_close(item["frames"][0], torch.from_numpy(expected).permute(2, 0, 1))


def test_splits_are_deterministic_disjoint_and_non_empty(
    dm: LandscapeDataModule, synth_root: Path, synth_cache: Path
) -> None:
    keys = {name: [c.key for c in clips] for name, clips in dm.clips.items()}
    assert all(keys.values())
    assert sorted(sum(keys.values(), [])) == sorted(
        p.relative_to(synth_root).as_posix() for p in synth_root.glob("*/*.mp4")
    )
    again = _datamodule(synth_root, synth_cache)
    again.setup()
    assert {name: [c.key for c in clips] for name, clips in again.clips.items()} == keys


def test_dataloaders_with_two_workers_yield_batches(synth_root: Path, synth_cache: Path) -> None:
    datamodule = _datamodule(synth_root, synth_cache, num_workers=2, batch_size=3)
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["frames"].shape == (3, 4, 3, 32, 32)
    assert batch["audio"].shape == (3, 4, 22050) and batch["mel"].shape[:3] == (3, 4, 32)
    assert batch["waveform"].shape == (3, 88200)
    assert batch["category"].dtype == torch.long and batch["category"].shape == (3,)
    assert [CATEGORIES[i] for i in batch["category"]] == batch["category_name"]
    assert len(batch["path"]) == 3
    val = list(datamodule.val_dataloader())
    assert sum(len(b["path"]) for b in val) == len(datamodule.clips["val"])


def test_test_clips_are_the_test_split(dm: LandscapeDataModule) -> None:
    assert dm.test_clips() == dm.clips["test"] and dm.test_clips()[0].load_frames().ndim == 4


def test_index_csv_sets_clips_and_splits(synth_root: Path, tmp_path: Path) -> None:
    clips = sorted(synth_root.glob("*/*_000.mp4"))
    rows = [f"{p},{p.parent.name}-x,{'test' if i == 0 else ''}" for i, p in enumerate(clips)]
    csv = tmp_path / "index.csv"
    csv.write_text("path,category,split\n" + "\n".join(rows) + "\n")
    datamodule = _datamodule(synth_root, tmp_path / "cache", index_csv=str(csv))
    assert datamodule.categories == [f"{c}-x" for c in CATEGORIES]
    datamodule.prepare_data()
    datamodule.setup()
    test_keys = [c.key for c in datamodule.test_clips()]
    assert clips[0].as_posix() in test_keys
    assert sum(len(v) for v in datamodule.clips.values()) == 5
    assert all(datamodule.clips[name] for name in ("train", "val", "test"))


def test_bad_arguments_and_missing_cache_are_clear(synth_root: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="num_frames must be positive, got 0"):
        _datamodule(synth_root, tmp_path, num_frames=0)
    with pytest.raises(ValueError, match="val_fraction \\+ test_fraction must be below 1"):
        _datamodule(synth_root, tmp_path, val_fraction=0.6, test_fraction=0.5)
    with pytest.raises(FileNotFoundError, match="dataset root is not a folder"):
        _datamodule(tmp_path / "missing", tmp_path)
    with pytest.raises(ValueError, match="split must be one of"):
        _datamodule(synth_root, tmp_path).split_clips("validation")
    with pytest.raises(FileNotFoundError, match="sgvideo prepare --root"):
        _datamodule(synth_root, tmp_path / "empty").setup()
