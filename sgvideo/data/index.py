"""Which clips a dataset has: a folder of category folders or a CSV index, and their splits.

A clip's `key` (its path relative to the dataset root or the CSV's folder, "/"-separated)
names it everywhere: in the cache, in the hash that picks its split, in reports. Moving the
whole dataset folder therefore keeps both the cache and the splits.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".mov", ".avi")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Clip:
    """One source video: where it is, its stable key, its category and its split (if fixed)."""

    path: Path
    key: str
    category: str
    split: str | None = None


def _is_video(path: Path) -> bool:
    visible = not path.name.startswith(".")
    return visible and path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file()


def _category_dirs(root: Path) -> list[Path]:
    if not root.is_dir():
        raise FileNotFoundError(
            f"dataset root is not a folder: {root} (expected {root}/<category>/<clip>.mp4; "
            f"`sgvideo synth-data --out {root}` writes a synthetic dataset there)"
        )
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def discover_clips(root: str | os.PathLike) -> list[Clip]:
    """Every video under `root/<category>/` (sub-folders included), sorted by key.

    Files directly in `root`, hidden files and other extensions are ignored.
    """
    root = Path(root)
    clips = [
        Clip(path=path.resolve(), key=path.relative_to(root).as_posix(), category=folder.name)
        for folder in _category_dirs(root)
        for path in sorted(folder.rglob("*"))
        if _is_video(path)
    ]
    return sorted(clips, key=lambda clip: clip.key)


def read_index_csv(index_csv: str | os.PathLike) -> list[Clip]:
    """Clips listed in a CSV with columns `path`, `category` and optionally `split`.

    Relative paths are relative to the CSV's folder. An empty or missing split means "assign
    by hash" like a folder dataset; otherwise it must be one of train, val, test.
    """
    index_csv = Path(index_csv)
    if not index_csv.is_file():
        raise FileNotFoundError(f"index CSV not found: {index_csv}")
    with index_csv.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"path", "category"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(
                f"{index_csv}: missing column(s) {', '.join(sorted(missing))}; "
                "expected a header with path, category[, split]"
            )
        rows = list(reader)
    clips = []
    for line, row in enumerate(rows, start=2):
        split = (row.get("split") or "").strip() or None
        if split is not None and split not in SPLITS:
            raise ValueError(
                f"{index_csv}:{line}: split must be one of {', '.join(SPLITS)} or empty, "
                f"got {split!r}"
            )
        category, raw = row["category"].strip(), row["path"].strip()
        if not raw or not category:
            raise ValueError(f"{index_csv}:{line}: empty path or category")
        given = Path(raw)
        path = given if given.is_absolute() else index_csv.parent / given
        clips.append(Clip(path.resolve(), given.as_posix(), category, split))
    return clips


def load_index(root: str | os.PathLike, index_csv: str | os.PathLike | None = None) -> list[Clip]:
    """The CSV's clips when `index_csv` is given, else the clips found under `root`."""
    return read_index_csv(index_csv) if index_csv else discover_clips(root)


def list_categories(
    root: str | os.PathLike, index_csv: str | os.PathLike | None = None
) -> list[str]:
    """Sorted category names, cheaply: the CSV's category column or the folders holding a video."""
    if index_csv:
        return sorted({clip.category for clip in read_index_csv(index_csv)})
    return [
        folder.name
        for folder in _category_dirs(Path(root))
        if any(_is_video(path) for path in folder.rglob("*"))
    ]


def _unit_hash(key: str, seed: int) -> float:
    """A stable pseudo-random number in [0, 1) from a clip key (same on every machine)."""
    digest = hashlib.sha1(f"{seed}:{key}".encode()).hexdigest()
    return int(digest[:15], 16) / 16**15


def check_split_fractions(val_fraction: float, test_fraction: float) -> None:
    """Raise ValueError unless both fractions are in [0, 1) and leave some clips for training."""
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {value}")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"val_fraction + test_fraction must be below 1, got {val_fraction + test_fraction}"
        )


def assign_splits(
    clips: list[Clip], val_fraction: float, test_fraction: float, seed: int = 0
) -> dict[str, list[Clip]]:
    """Split clips into train/val/test: a fixed split is kept, the others go by key hash.

    A clip whose hash h (in [0, 1)) is below `test_fraction` is a test clip, below
    `test_fraction + val_fraction` a validation clip, else a training clip. So a clip never
    changes split when clips are added or removed. For small datasets the hashed clips are
    allotted by rank of h instead: round(fraction * n) clips, at least one, for test then val,
    within each category where that category's split would otherwise be empty (at least 3 of
    its clips hashed), so that every category is evaluated on held-out clips; and over all
    hashed clips where a whole split would still be empty.
    """
    check_split_fractions(val_fraction, test_fraction)
    splits: dict[str, list[Clip]] = {name: [] for name in SPLITS}
    by_category: dict[str, list[Clip]] = {}
    for clip in clips:
        if clip.split is not None:
            splits[clip.split].append(clip)
        else:
            by_category.setdefault(clip.category, []).append(clip)
    parts = [
        _split_by_hash(group, val_fraction, test_fraction, seed) for group in by_category.values()
    ]
    hashed = {name: [clip for part in parts for clip in part[name]] for name in SPLITS}
    fractions = {"val": val_fraction, "test": test_fraction}
    if any(fraction > 0 and not hashed[name] for name, fraction in fractions.items()):
        every = [clip for group in by_category.values() for clip in group]
        hashed = _split_by_hash(every, val_fraction, test_fraction, seed)
    for name in SPLITS:
        splits[name] += hashed[name]
    return splits


def _split_by_hash(
    clips: list[Clip], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, list[Clip]]:
    """Hashed clips by split (see `assign_splits`), ranked when a split would be empty."""
    hashed = sorted(clips, key=lambda c: _unit_hash(c.key, seed))
    h = [_unit_hash(clip.key, seed) for clip in hashed]
    n = len(hashed)
    n_test = sum(x < test_fraction for x in h)
    n_val = sum(test_fraction <= x < test_fraction + val_fraction for x in h)
    if n >= 3 and ((test_fraction > 0 and n_test == 0) or (val_fraction > 0 and n_val == 0)):
        n_test = max(1, round(test_fraction * n)) if test_fraction > 0 else 0
        n_val = max(1, round(val_fraction * n)) if val_fraction > 0 else 0
        n_test = min(n_test, n - 1 - min(n_val, 1))
        n_val = min(n_val, n - 1 - n_test)
    return {
        "test": hashed[:n_test],
        "val": hashed[n_test : n_test + n_val],
        "train": hashed[n_test + n_val :],
    }
