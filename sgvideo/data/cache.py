"""Layout of the prepared-clip cache and how to read one entry.

```
<cache_dir>/
  report.json                          last prepare run: settings, decoded, reused, skipped
  v1/size256-fps30-sr44100/            one folder per layout version and settings
    <sha1(clip key)[:16]>/             one entry per clip, appears complete or not at all
      frames.npy   "n h w 3" uint8     frame k shows the time [k / fps, (k + 1) / fps)
      audio.npy    "samples" float32   mono at the sample rate; sample 0 is time 0
      meta.json    source path, size, mtime, fps, frame/sample counts, duration, category
```
An entry is written into a `.tmp-*` folder beside it and renamed into place when complete,
so a folder without `meta.json` or a leftover `.tmp-*` folder is never read.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CACHE_VERSION = 1
FRAMES_FILE = "frames.npy"
AUDIO_FILE = "audio.npy"
META_FILE = "meta.json"
REPORT_FILE = "report.json"
TMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class CacheSettings:
    """What a cache entry depends on besides its source file."""

    size: int = 256
    fps: float = 30.0
    sample_rate: int = 44100

    def __post_init__(self) -> None:
        if self.size < 1 or self.fps <= 0 or self.sample_rate < 1:
            raise ValueError(
                f"cache settings must be positive: size={self.size}, fps={self.fps}, "
                f"sample_rate={self.sample_rate}"
            )

    def folder(self, cache_dir: str | os.PathLike) -> Path:
        """The folder holding the entries for these settings."""
        name = f"size{self.size}-fps{self.fps:g}-sr{self.sample_rate}"
        return Path(cache_dir) / f"v{CACHE_VERSION}" / name


def entry_dir(cache_dir: str | os.PathLike, settings: CacheSettings, key: str) -> Path:
    """Where the clip with this key is cached."""
    return settings.folder(cache_dir) / hashlib.sha1(key.encode()).hexdigest()[:16]


def read_meta(entry: Path) -> dict[str, Any] | None:
    """The entry's metadata, or None when the entry is missing or incomplete."""
    try:
        return json.loads((entry / META_FILE).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None


@dataclass(frozen=True)
class CachedClip:
    """A prepared clip: its source, label and cache entry (arrays are read on demand)."""

    key: str
    path: str
    category: int
    category_name: str
    entry: Path
    num_frames: int
    fps: float
    sample_rate: int
    num_samples: int

    @property
    def duration(self) -> float:
        """Seconds of video in the cache (num_frames / fps)."""
        return self.num_frames / self.fps

    def load_frames(self) -> np.ndarray:
        """ "n h w 3" uint8, memory-mapped (reading a few frames touches only those)."""
        return np.load(self.entry / FRAMES_FILE, mmap_mode="r")

    def load_audio(self) -> np.ndarray:
        """ "samples" float32 mono at `sample_rate`, memory-mapped."""
        return np.load(self.entry / AUDIO_FILE, mmap_mode="r")
