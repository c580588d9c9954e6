"""The two sides of an evaluation: real videos (a prepared test split or a folder) and
generated ones (a folder, or a VideoGenerator run on the real clips' sounds), loaded lazily."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sgvideo.evaluation.settings import EvaluationSettings
from sgvideo.metrics.following import long_sound
from sgvideo.metrics.sources import (
    Video,
    VideoGenerator,
    category_from_path,
    datamodule_from_options,
    generate_video,
    read_cached_clip,
    read_video_file,
    video_files,
)

VideoLoader = Callable[[], Video]


@dataclass
class VideoSet:
    """Lazily loaded videos of one side and how they were obtained."""

    loaders: list[VideoLoader]
    source: str
    decoding: str
    real: bool
    data: Any = None  # the LandscapeDataModule of a real set from --data
    drift: list[VideoLoader] = field(default_factory=list)  # long videos (generated side)


def real_set(settings: EvaluationSettings) -> VideoSet:
    """The real videos: --real-dir's files, or the prepared test split of --data."""
    if settings.real_dir is not None:
        return folder_set(settings.real_dir, settings.sample_rate, real=True)
    data = datamodule_from_options(settings.data)
    clips = data.test_clips()
    hp = data.hparams
    return VideoSet(
        [partial(read_cached_clip, clip) for clip in clips],
        f"test split of {hp.index_csv or hp.root} ({len(clips)} clips; "
        f"test_fraction {hp.test_fraction}, split seed {hp.seed})",
        f"prepare cache: uint8 frames at {hp.image_size} px (centre square), {hp.fps} fps",
        real=True,
        data=data,
    )


def folder_set(folder: str, sample_rate: int, real: bool) -> VideoSet:
    """Every video file under `folder`; its category from its sub-folder or file name."""
    files = video_files(folder)
    loaders = [
        partial(read_video_file, f, sample_rate, category_from_path(f, folder)) for f in files
    ]
    return VideoSet(
        loaders,
        f"folder {folder} ({len(files)} videos; category from the sub-folder, else the file "
        "name up to '_')",
        "video files decoded with PyAV (native size and frame rate)",
        real=real,
        drift=loaders if not real else [],
    )


def checkpoint_generator(checkpoint: str, device: str) -> VideoGenerator:
    """The stage-2 model as a VideoGenerator: `SoundToVideo`, a callable(waveform "samples"
    float32, sample_rate, fps, seed) -> frames "t 3 h w" in [-1, 1], one frame per 1 / fps of
    sound. Imported here: folder-only runs load no model code."""
    from sgvideo.inference.pipeline import SoundToVideo

    return SoundToVideo.from_checkpoint(checkpoint, device=device)


def generated_set(
    settings: EvaluationSettings,
    real: VideoSet,
    generator: VideoGenerator | None,
    name: str | None = None,
) -> VideoSet:
    """--generated's files, or one video of `generator` (default: --checkpoint's model) per
    real clip's sound (video i from the sound of real clip i mod the number of real clips)."""
    if settings.generated is not None:
        return folder_set(settings.generated, settings.sample_rate, real=False)
    generator = generator or checkpoint_generator(settings.checkpoint, settings.device)
    sounds, seed = real.loaders, settings.seed

    def make(i: int) -> Video:
        return generate_video(generator, sounds[i % len(sounds)](), seed=seed + i)

    return VideoSet(
        [partial(make, i) for i in range(settings.num_videos)],
        f"{name or settings.checkpoint or 'generator'}: video i from the sound of real clip i "
        f"mod {len(sounds)}, seed {seed} + i",
        "frames straight from the generator (no mp4 round trip), quantised to uint8",
        real=False,
        drift=drift_loaders(settings, real, generator),
    )


def drift_loaders(
    settings: EvaluationSettings, real: VideoSet, generator: VideoGenerator
) -> list[VideoLoader]:
    """One long video per category: its real test sounds joined to >= --drift-seconds."""
    if "drift" not in settings.names:
        return []
    by_category: dict[str, list[VideoLoader]] = {}
    for load in real.loaders:
        video = load()
        if video.category is not None and video.audio is not None:
            by_category.setdefault(video.category, []).append(load)

    def make(category: str) -> Video:
        pieces = [load() for load in by_category[category]]
        sound = long_sound(pieces, settings.drift_seconds, category)
        return generate_video(generator, sound, seed=settings.seed)

    return [partial(make, category) for category in sorted(by_category)]
