"""Clip discovery, splits and the prepare cache, through the real decoders."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

from sgvideo.audio import load_audio
from sgvideo.data import prepare as prepare_module
from sgvideo.data.cache import CacheSettings, entry_dir, read_meta
from sgvideo.data.decode import resampled_frames
from sgvideo.data.index import (
    Clip,
    assign_splits,
    discover_clips,
    list_categories,
    read_index_csv,
)
from sgvideo.data.prepare import main, prepare_dataset
from sgvideo.video_io import VideoWriter, read_frames, write_video
from tests.fixtures.data import SYNTH_CACHE_SETTINGS

SETTINGS = CacheSettings(
    size=SYNTH_CACHE_SETTINGS["image_size"],
    fps=SYNTH_CACHE_SETTINGS["fps"],
    sample_rate=SYNTH_CACHE_SETTINGS["sample_rate"],
)


def _prepare(root: Path, cache: Path, **kwargs):
    return prepare_dataset(
        root, cache, size=SETTINGS.size, fps=SETTINGS.fps, progress=False, **kwargs
    )


@pytest.fixture
def copied(synth_root: Path, synth_cache: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of the synthetic dataset and its cache (mtimes kept, so still cached)."""
    root, cache = tmp_path / "root", tmp_path / "cache"
    shutil.copytree(synth_root, root)
    shutil.copytree(synth_cache, cache)
    return root, cache


def _entry(cache: Path, key: str) -> Path:
    return entry_dir(cache, SETTINGS, key)


# --- clip index and splits --------------------------------------------------------------------


def test_discover_clips_reads_category_folders(tmp_path: Path) -> None:
    for rel in ["rain/a.mp4", "rain/sub/b.MKV", "fire/c.webm", "fire/.hidden.mp4", "fire/d.txt"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    (tmp_path / "loose.mp4").write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    clips = discover_clips(tmp_path)
    assert [(c.key, c.category) for c in clips] == [
        ("fire/c.webm", "fire"),
        ("rain/a.mp4", "rain"),
        ("rain/sub/b.MKV", "rain"),
    ]
    assert all(c.path.is_absolute() and c.split is None for c in clips)
    assert list_categories(tmp_path) == ["fire", "rain"]


def test_index_csv_paths_splits_and_errors(tmp_path: Path) -> None:
    csv = tmp_path / "lists" / "index.csv"
    csv.parent.mkdir()
    absolute = tmp_path / "elsewhere.mp4"
    csv.write_text(f"path,category,split\nclips/a.mp4,rain,train\n{absolute},fire,\n")
    clips = read_index_csv(csv)
    assert clips == [
        Clip((csv.parent / "clips/a.mp4").resolve(), "clips/a.mp4", "rain", "train"),
        Clip(absolute.resolve(), absolute.as_posix(), "fire", None),
    ]
    assert list_categories(tmp_path, index_csv=csv) == ["fire", "rain"]

    csv.write_text("file,category\na.mp4,rain\n")
    with pytest.raises(ValueError, match=r"missing column\(s\) path"):
        read_index_csv(csv)
    csv.write_text("path,category,split\na.mp4,rain,valid\n")
    with pytest.raises(ValueError, match=r"index.csv:2: split must be one of train, val, test"):
        read_index_csv(csv)
    with pytest.raises(FileNotFoundError, match="index CSV not found"):
        read_index_csv(tmp_path / "nope.csv")


def _clips(n: int) -> list[Clip]:
    return [Clip(Path(f"/d/c{i}.mp4"), f"cat/c{i}.mp4", "cat") for i in range(n)]


def test_hash_split_is_deterministic_stable_and_follows_the_fractions() -> None:
    clips = _clips(2000)
    splits = assign_splits(clips, val_fraction=0.1, test_fraction=0.2, seed=3)
    assert splits == assign_splits(list(reversed(clips)), 0.1, 0.2, seed=3)
    sizes = {name: len(v) for name, v in splits.items()}
    assert sum(sizes.values()) == 2000
    assert abs(sizes["test"] - 400) < 60 and abs(sizes["val"] - 200) < 45
    # Adding clips never moves an existing clip to another split.
    grown = assign_splits(_clips(2500), 0.1, 0.2, seed=3)
    for name in splits:
        assert set(splits[name]) <= set(grown[name])
    other_seed = assign_splits(clips, 0.1, 0.2, seed=4)
    assert set(other_seed["test"]) != set(splits["test"])


def test_every_small_category_is_held_out_in_test_and_val() -> None:
    clips = [Clip(Path(f"/d/{c}{i}.mp4"), f"{c}/{c}{i}.mp4", c) for c in "abcde" for i in range(8)]
    splits = assign_splits(clips, val_fraction=0.1, test_fraction=0.1)
    for name in ("test", "val"):
        assert {clip.category for clip in splits[name]} == set("abcde"), name
    assert sum(len(v) for v in splits.values()) == 40 and len(splits["train"]) >= 25
    # large categories keep the pure hash split: a clip never changes split as clips are added
    many = [Clip(Path(f"/d/{c}{i}.mp4"), f"{c}/{c}{i}.mp4", c) for c in "ab" for i in range(600)]
    grown = many + [Clip(Path(f"/d/b{i}.mp4"), f"b/b{i}.mp4", "b") for i in range(600, 700)]
    before, after = assign_splits(many, 0.1, 0.1), assign_splits(grown, 0.1, 0.1)
    for name in before:
        assert set(before[name]) <= set(after[name])


def test_tiny_datasets_get_every_split_and_fixed_splits_are_kept() -> None:
    for n in range(3, 12):
        splits = assign_splits(_clips(n), val_fraction=0.1, test_fraction=0.1)
        assert all(splits[name] for name in ("train", "val", "test")), n
        assert sum(len(v) for v in splits.values()) == n
    fixed = [Clip(Path("/d/x.mp4"), "x.mp4", "cat", "test")]
    splits = assign_splits(fixed + _clips(5), val_fraction=0.0, test_fraction=0.0)
    assert splits["test"] == fixed and not splits["val"] and len(splits["train"]) == 5
    # one clip per category: the split is made over all of them, not per category
    singles = [Clip(Path(f"/d/{c}.mp4"), f"{c}/0.mp4", c) for c in "abcde"]
    assert all(assign_splits(singles, 0.1, 0.1)[name] for name in ("train", "val", "test"))
    with pytest.raises(ValueError, match="val_fraction \\+ test_fraction must be below 1"):
        assign_splits(_clips(5), val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ValueError, match=r"test_fraction must be in \[0, 1\)"):
        assign_splits(_clips(5), val_fraction=0.1, test_fraction=-0.1)


# --- decoding --------------------------------------------------------------------------------


def test_decode_resamples_fps_and_crops_to_square(tmp_path: Path) -> None:
    """24 fps 48x64 -> 12 fps 32x32: output frame k shows the source frame on screen at its
    centre, (k + 0.5) / 12 s, i.e. source frame 2k + 1; the crop keeps the centre columns."""
    frames = np.zeros((24, 48, 64, 3), np.uint8)
    frames[:, :, :, 0] = (np.arange(24) * 10)[:, None, None]  # red = 10 * frame index
    frames[:, :, 24:40, 1] = 255  # a green band in the middle of the width
    sound = np.zeros(44100, np.float32)
    write_video(tmp_path / "v.mp4", frames, fps=24, audio=sound)
    out = np.stack(list(resampled_frames(tmp_path / "v.mp4", size=32, fps=12)))
    audio = load_audio(tmp_path / "v.mp4", 16000).numpy()
    assert out.shape == (12, 32, 32, 3) and out.dtype == np.uint8
    assert np.abs(out[:, 16, 16, 0].astype(int) - (np.arange(12) * 2 + 1) * 10).max() <= 6
    # 64 px wide scaled by 32/48 -> 43 px, cropped to 32: the band (24..40 -> 16..27) moves
    # to columns 11..21 of the crop.
    green = out[6, 16, :, 1] > 128
    assert green[12:20].all() and not green[:9].any() and not green[24:].any()
    assert audio.dtype == np.float32 and abs(len(audio) - 16000) <= 1024


def test_cache_matches_a_direct_decode(synth_root: Path, synth_cache: Path) -> None:
    keys = [clip.key for clip in discover_clips(synth_root)]
    assert len(keys) == 10 and all(read_meta(_entry(synth_cache, k)) for k in keys)
    key = keys[0]
    meta = read_meta(_entry(synth_cache, key))
    source = synth_root / key
    assert meta["source"] == str(source.resolve()) and meta["category"] == key.split("/")[0]
    assert meta["source_size"] == source.stat().st_size
    assert meta["source_mtime_ns"] == source.stat().st_mtime_ns
    frames = np.load(_entry(synth_cache, key) / "frames.npy", mmap_mode="r")
    audio = np.load(_entry(synth_cache, key) / "audio.npy", mmap_mode="r")
    assert isinstance(frames, np.memmap) and frames.dtype == np.uint8
    source_frames = read_frames(source)  # 15 fps: every source frame is cached twice at 30 fps
    assert frames.shape == (meta["num_frames"], 32, 32, 3)
    assert meta["num_frames"] == 2 * len(source_frames)
    assert meta["duration"] == pytest.approx(len(source_frames) / 15)
    assert audio.dtype == np.float32 and audio.shape == (meta["num_samples"],)
    np.testing.assert_array_equal(audio, load_audio(source, 44100).numpy())
    np.testing.assert_array_equal(frames, source_frames[np.arange(len(frames)) // 2])


# --- incremental runs ------------------------------------------------------------------------


def test_second_run_decodes_only_new_or_changed_clips(copied: tuple[Path, Path]) -> None:
    root, cache = copied
    report = _prepare(root, cache)
    assert report.decoded == [] and len(report.reused) == 10 and report.skipped == []

    changed = sorted(root.glob("*/*.mp4"))[3]
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    new = root / "rain" / "new.mp4"
    shutil.copy(changed, new)
    report = _prepare(root, cache)
    key = changed.relative_to(root).as_posix()
    assert report.decoded == sorted([key, "rain/new.mp4"]) and len(report.reused) == 9
    assert read_meta(_entry(cache, key))["source_mtime_ns"] == changed.stat().st_mtime_ns

    other = prepare_dataset(root, cache, size=16, fps=10, progress=False)
    assert len(other.decoded) == 11
    small = entry_dir(cache, CacheSettings(size=16, fps=10.0, sample_rate=44100), key)
    assert small.parent.name == "size16-fps10-sr44100"
    assert np.load(small / "frames.npy").shape == (25, 16, 16, 3)
    assert _prepare(root, cache).decoded == []  # both settings live side by side


def test_bad_clips_are_reported_not_fatal(
    copied: tuple[Path, Path], capsys: pytest.CaptureFixture
) -> None:
    root, cache = copied
    rng = np.random.default_rng(0)
    (root / "rain" / "corrupt.mp4").write_bytes(rng.integers(0, 256, 4000, np.uint8).tobytes())
    with VideoWriter(root / "fire" / "silent.mp4", fps=30, size=32) as writer:
        writer.write(np.full((15, 32, 32, 3), 100, np.uint8))
    args = ["--root", str(root), "--cache", str(cache), "--size", "32", "--workers", "2"]
    assert main([*args, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "12 clips" in out and "2 skipped" in out
    assert "rain/corrupt.mp4" in out and "fire/silent.mp4" in out

    report = json.loads((cache / "report.json").read_text())
    reasons = {item["key"]: item["reason"] for item in report["skipped"]}
    assert set(reasons) == {"rain/corrupt.mp4", "fire/silent.mp4"}
    assert "no audio stream" in reasons["fire/silent.mp4"]
    assert "corrupt" in reasons["rain/corrupt.mp4"]
    assert len(report["reused"]) == 10
    assert not list(SETTINGS.folder(cache).glob(".tmp-*"))
    # Known-bad unchanged files are not decoded again, but still reported.
    again = _prepare(root, cache)
    assert again.decoded == [] and [s.key for s in again.skipped] == sorted(reasons)


def test_interrupted_run_leaves_no_entry_and_is_resumed(
    copied: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, cache = copied
    shutil.rmtree(SETTINGS.folder(cache))
    real_write = prepare_module.write_frames_npy
    calls = []

    def interrupted_on_third(frames, path):
        calls.append(path)
        if len(calls) == 3:
            next(frames)
            Path(path).write_bytes(b"half a file")
            raise KeyboardInterrupt
        return real_write(frames, path)

    monkeypatch.setattr(prepare_module, "write_frames_npy", interrupted_on_third)
    with pytest.raises(KeyboardInterrupt):
        _prepare(root, cache)
    folder = SETTINGS.folder(cache)
    assert len(list(folder.iterdir())) == 2  # two complete entries, nothing else
    assert all(read_meta(entry) is not None for entry in folder.iterdir())
    monkeypatch.undo()

    # A process killed outright leaves its temporary folder: the next run removes it.
    leftover = folder / f".tmp-999999999-{'0' * 16}-{socket.gethostname()}"
    leftover.mkdir()
    (leftover / "frames.npy").write_bytes(b"partial")
    # A folder without meta.json (never produced by prepare, but possible by hand) is redone.
    incomplete = next(folder.iterdir())
    (incomplete / "meta.json").unlink()
    report = _prepare(root, cache)
    assert len(report.decoded) == 9 and len(report.reused) == 1
    assert not leftover.exists()
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        _entry(cache, c.key).name for c in discover_clips(root)
    )


def test_cli_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--root", str(tmp_path / "missing"), "--cache", str(tmp_path / "c")]) == 2
    assert "sgvideo prepare: error: dataset root is not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["--root", str(tmp_path / "empty"), "--cache", str(tmp_path / "c")]) == 2
    assert "no video clips found" in capsys.readouterr().err
    assert main(["--cache", str(tmp_path / "c")]) == 2
    assert "give --root or --index-csv" in capsys.readouterr().err
