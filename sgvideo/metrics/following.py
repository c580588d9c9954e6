"""Does a set of videos follow its sounds? Category accuracy, loudness-motion sync and drift.

`FollowingMeasures` feeds one side's videos (real clips or one generator's videos) to the
metrics and counts every video it cannot score, with the reason, instead of failing:
a video without sound (no sync), of a category the judge does not know (no accuracy), or too
short for the drift split.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from sgvideo.audio import frame_count
from sgvideo.metrics.category import CategoryAccuracy, Classifier
from sgvideo.metrics.judge import FrameJudge
from sgvideo.metrics.sources import Video, model_frames
from sgvideo.metrics.sync import LoudnessMotionSync


def drift_thirds(num_frames: int) -> tuple[slice, slice]:
    """The first and the last third of `num_frames` frames (floor(T / 3) frames each)."""
    third = num_frames // 3
    if third < 1:
        raise ValueError(f"a drift split needs at least 3 frames, got {num_frames}")
    return slice(0, third), slice(num_frames - third, num_frames)


def long_sound(pieces: Sequence[Video], seconds: float, category: str) -> Video:
    """The sounds of `pieces` joined in order, repeated until they last at least `seconds`."""
    sounds = [np.asarray(p.audio, np.float32) for p in pieces if p.audio is not None]
    if not sounds:
        raise ValueError(f"no {category} clip with sound to make a long sound from")
    rate, fps = pieces[0].sample_rate, pieces[0].fps
    joined, total = [], 0
    while total < seconds * rate:
        for sound in sounds:
            joined.append(sound)
            total += len(sound)
    audio = np.concatenate(joined)
    empty = np.zeros((0, 1, 1, 3), np.uint8)
    return Video(f"long {category} sound", empty, fps, audio, rate, category)


def _frames(video: Video, judge: FrameJudge) -> torch.Tensor:
    return model_frames(video.frames, judge.image_size)


class FollowingMeasures:
    """The sound-following measures of one side.

    `judge` labels frames for category accuracy (and drift); `clip_classifier` adds CLIP
    zero-shot accuracy; `sync` adds loudness-motion sync, and for generated videos
    `chance_sync` scores each video against the sound of the video scored before it (another
    clip's sound, so about 0 for any generator: the chance level).
    """

    def __init__(
        self,
        judge: FrameJudge | None,
        sync: bool,
        chance_sync: bool = False,
        clip_classifier: Classifier | None = None,
        drift_seconds: float = 12.0,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.judge = judge
        self.categories = judge.categories if judge is not None else []
        k = len(self.categories)
        self.accuracy = CategoryAccuracy(judge, k) if judge is not None else None
        self.clip_accuracy = (
            CategoryAccuracy(clip_classifier, k) if clip_classifier and judge is not None else None
        )
        self.drift = (
            {part: CategoryAccuracy(judge, k) for part in ("first third", "last third")}
            if judge is not None
            else None
        )
        self.sync = LoudnessMotionSync() if sync else None
        self.chance_sync = LoudnessMotionSync() if sync and chance_sync else None
        self.drift_seconds = drift_seconds
        self.skipped: dict[str, list[str]] = defaultdict(list)  # reason -> video names
        self.messages: dict[str, str] = {}  # reason -> the first skipped video's message
        self.previous_sound: Video | None = None

    def _skip(self, reason: str, video: Video, message: str) -> None:
        self.skipped[reason].append(video.name)
        self.messages.setdefault(reason, f"{video.name}: {message}")

    def _label(self, video: Video) -> int | None:
        label = None if video.category is None else self.judge.label(video.category)
        if label is None:
            known = ", ".join(self.categories)
            self._skip(
                "unknown_category",
                video,
                f"category {video.category!r} is not one the frame judge knows ({known}); "
                "not scored for accuracy (name a generated file or its folder after its category)",
            )
        return label

    def update(self, video: Video) -> None:
        """Score one whole video for accuracy and sync."""
        if self.accuracy is not None:
            label = self._label(video)
            if label is not None:
                frames = _frames(video, self.judge)
                target = torch.full((len(frames),), label)
                self.accuracy.update(frames, target)
                if self.clip_accuracy is not None:
                    self.clip_accuracy.update(frames, target)
        if self.sync is None:
            return
        if video.audio is None:
            self._skip("without_sound", video, "has no sound: not scored for sync")
            return
        frames = torch.from_numpy(np.array(video.frames)).permute(0, 3, 1, 2)[None]
        wave = torch.from_numpy(np.array(video.audio, dtype=np.float32))[None]
        self.sync.update(frames, wave, video.sample_rate, video.fps)
        if self.chance_sync is not None and self.previous_sound is not None:
            other = self.previous_sound
            length = frame_count(len(other.audio), other.sample_rate, video.fps)
            length = min(length, len(video.frames))
            other_wave = torch.from_numpy(np.array(other.audio, dtype=np.float32))[None]
            self.chance_sync.update(frames[:, :length], other_wave, other.sample_rate, video.fps)
        self.previous_sound = video

    def update_drift(self, video: Video) -> None:
        """Score a long video: judge accuracy over its first and its last third."""
        if self.drift is None:
            return
        seconds = len(video.frames) / video.fps
        if seconds < self.drift_seconds or len(video.frames) < 3:
            self._skip(
                "too_short_for_drift",
                video,
                f"lasts {seconds:.2f} s, under the drift split's {self.drift_seconds:g} s",
            )
            return
        label = self._label(video)
        if label is None:
            return
        frames = _frames(video, self.judge)
        for part, span in zip(self.drift, drift_thirds(len(frames)), strict=True):
            chosen = frames[span]
            self.drift[part].update(chosen, torch.full((len(chosen),), label))

    def compute(self) -> dict[str, Any]:
        """Every measure that saw data, by report name (per-category accuracy as a dict)."""
        values: dict[str, Any] = {}
        if self.accuracy is not None and self.accuracy.total.sum() > 0:
            values["judge_accuracy"] = float(self.accuracy.compute())
            values["judge_accuracy_per_category"] = self._per_category(self.accuracy)
        if self.clip_accuracy is not None and self.clip_accuracy.total.sum() > 0:
            values["clip_zero_shot_accuracy"] = float(self.clip_accuracy.compute())
        for name, metric in (("sync", self.sync), ("chance_sync", self.chance_sync)):
            if metric is not None and metric.count > 0:
                values[name] = float(metric.compute())
        if self.drift is not None and all(m.total.sum() > 0 for m in self.drift.values()):
            values["drift_accuracy"] = {
                part: float(metric.compute()) for part, metric in self.drift.items()
            }
        return values

    def _per_category(self, metric: CategoryAccuracy) -> dict[str, float]:
        per = metric.per_category().tolist()
        return {name: v for name, v in zip(self.categories, per, strict=True) if v == v}

    def notes(self) -> list[str]:
        """One line per reason a video was skipped: how many, and the first one's message."""
        return [
            f"{len(self.skipped[reason])} video(s) skipped ({reason}); first: {message}"
            for reason, message in self.messages.items()
        ]

    def skip_counts(self) -> dict[str, int]:
        counts = {reason: len(names) for reason, names in self.skipped.items()}
        if self.sync is not None and self.sync.undefined > 0:
            counts["sync_undefined"] = int(self.sync.undefined)
        return counts
