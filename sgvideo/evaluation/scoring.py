"""One evaluation run: the real side scored once, then any number of generated sets, each
against the real side's feature statistics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from sgvideo.evaluation.networks import (
    audio_visual,
    feature_networks,
    frame_judge,
    zero_shot_classifier,
)
from sgvideo.evaluation.sets import VideoSet, real_set
from sgvideo.evaluation.settings import (
    JUDGED,
    VIDEO_METRICS,
    EvaluationError,
    EvaluationSettings,
)
from sgvideo.metrics import AVAlign, CLIPAudioVisualScore
from sgvideo.metrics.following import FollowingMeasures
from sgvideo.metrics.sources import Video, clip_indices, model_frames


@dataclass
class SideMetrics:
    """The per-video metrics of one side (None when not requested)."""

    clip_av: CLIPAudioVisualScore | None = None
    av_align: AVAlign | None = None
    following: FollowingMeasures | None = None


class FrechetFeeder:
    """Buffers evaluated clips and feeds FID (every frame) and FVD (clips) batch by batch."""

    def __init__(self, metrics: dict[str, Any], batch_size: int, device: str) -> None:
        self.metrics, self.batch_size, self.device = metrics, batch_size, device
        self.clips: list[torch.Tensor] = []

    def add(self, clip: torch.Tensor, real: bool) -> None:
        if self.clips and clip.shape != self.clips[0].shape:
            raise EvaluationError(
                f"clips of different sizes ({tuple(clip.shape)} vs {tuple(self.clips[0].shape)}):"
                " set --resolution"
            )
        self.clips.append(clip)
        if len(self.clips) == self.batch_size:
            self.flush(real)

    def flush(self, real: bool) -> None:
        if not self.clips:
            return
        videos = torch.stack(self.clips).to(self.device)
        self.clips = []
        if "fid" in self.metrics:
            self.metrics["fid"].update(videos.flatten(0, 1), real=real)
        if "fvd" in self.metrics:
            self.metrics["fvd"].update(videos, real=real)


class Evaluation:
    """One evaluation run of checked `settings`: the real side is scored on construction;
    `score` scores a generated set."""

    def __init__(self, settings: EvaluationSettings) -> None:
        self.settings = settings
        self.names = settings.names
        self.real = real_set(settings)
        self.real_frechet, self.networks = self._frechet()
        self.av = audio_visual(settings) if "clip_av" in self.names else None
        self.judge, self.judge_info = (
            frame_judge(settings, self.real) if set(JUDGED) & set(self.names) else (None, None)
        )
        self.zero_shot = zero_shot_classifier(settings, self.judge) if self.judge else None
        self.real_side = self._side(real=True)
        feeder = FrechetFeeder(self.real_frechet, settings.batch_size, settings.device)
        self.real_counts = self._feed(self.real, feeder, self.real_side)
        self.real_values = self._side_values(self.real_side)

    def score(self, generated: VideoSet) -> tuple[dict[str, Any], dict[str, Any]]:
        """Values and counts of one generated set (FID/FVD against the real side's features)."""
        frechet, _ = self._frechet()
        side = self._side(real=False)
        feeder = FrechetFeeder(frechet, self.settings.batch_size, self.settings.device)
        counts = self._feed(generated, feeder, side)
        values = {}
        for name, metric in frechet.items():
            metric.merge_state(self.real_frechet[name])  # the real side's feature statistics
            values[name] = float(metric.compute())
        return values | self._side_values(side), counts

    def _frechet(self) -> tuple[dict[str, Any], dict[str, str]]:
        metrics, described = feature_networks(self.settings, self.names)
        for metric in metrics.values():
            metric.to(self.settings.device)
        return metrics, described

    def _side(self, real: bool) -> SideMetrics:
        settings, names, av = self.settings, self.names, self.av
        av_scored = not real or settings.score_real
        judge = self.judge if "accuracy" in names or "drift" in names else None
        following = None
        if judge is not None or "sync" in names:
            following = FollowingMeasures(
                judge,
                sync="sync" in names,
                chance_sync=not real,
                clip_classifier=self.zero_shot,
                drift_seconds=settings.drift_seconds,
            )
        return SideMetrics(
            clip_av=CLIPAudioVisualScore(av.audio_encoder, av.image_encoder)
            if av_scored and av is not None
            else None,
            av_align=AVAlign() if av_scored and "av_align" in names else None,
            following=following,
        )

    def _side_values(self, side: SideMetrics) -> dict[str, Any]:
        values = side.following.compute() if side.following is not None else {}
        for name in ("clip_av", "av_align"):
            metric = getattr(side, name)
            if metric is not None and metric.update_count > 0:
                values[name] = float(metric.compute())
        if "accuracy" not in self.names:
            values.pop("judge_accuracy", None)
            values.pop("judge_accuracy_per_category", None)
            values.pop("clip_zero_shot_accuracy", None)
        return values

    def _feed(self, videos: VideoSet, feeder: FrechetFeeder, side: SideMetrics) -> dict[str, Any]:
        """Feed up to --num-videos usable videos of one side to the metrics (none when no
        requested metric scores videos: prior_coverage alone); returns counts."""
        settings = self.settings
        wanted = settings.num_videos if set(VIDEO_METRICS) & set(self.names) else 0
        num_frames, rng = settings.num_frames, np.random.default_rng(settings.seed)
        order = rng.permutation(len(videos.loaders)) if videos.real else range(len(videos.loaders))
        counts: dict[str, Any] = {"videos": 0, "skipped_too_short": 0, "without_sound": 0}
        name = "real" if videos.real else "generated"
        spans: set[float] = set()
        progress = {"unit": "video", "disable": not settings.progress}
        with tqdm(total=wanted, desc=name, **progress) as bar:
            for index in order:
                if counts["videos"] == wanted:
                    break
                video = videos.loaders[index]()
                step = settings.frame_step(video)
                span = int(clip_indices(0, num_frames, step)[-1]) + 1
                if len(video.frames) < span:
                    counts["skipped_too_short"] += 1
                    continue
                start = int(rng.integers(len(video.frames) - span + 1)) if videos.real else 0
                clip = model_frames(video.clip(start, num_frames, step), settings.resolution)
                spans.add(round(num_frames * step / video.fps, 4))
                feeder.add(clip, videos.real)
                if side.following is not None:
                    side.following.update(video)
                if side.av_align is not None or side.clip_av is not None:
                    if video.audio is None:
                        counts["without_sound"] += 1
                    else:
                        self._score_sound(video, clip, clip_indices(start, num_frames, step), side)
                counts["videos"] += 1
                bar.update()
        feeder.flush(videos.real)
        if side.following is not None:
            for load in tqdm(videos.drift, desc=f"{name} drift", disable=not settings.progress):
                side.following.update_drift(load())
            counts.update(side.following.skip_counts())
            counts["notes"] = [f"{name}: {note}" for note in side.following.notes()]
        counts["clip_seconds"] = sorted(spans)
        return counts

    def _score_sound(
        self, video: Video, clip: torch.Tensor, picks: np.ndarray, side: SideMetrics
    ) -> None:
        """AV-Align on the whole video and its sound; CLIP-AV on the evaluated clip's frames."""
        if side.av_align is not None:
            frames = torch.from_numpy(np.array(video.frames)).permute(0, 3, 1, 2)[None]
            wave = torch.from_numpy(np.array(video.audio, dtype=np.float32))[None]
            side.av_align.update(frames, wave, video.sample_rate, video.fps)
        if side.clip_av is not None:
            mel = self.av.frame_mels(video, picks)
            side.clip_av.update(clip[None].to(self.settings.device), mel[None])
