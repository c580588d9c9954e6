"""What one `sgvideo evaluate` run measures and how: `EvaluationSettings`, checked once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sgvideo.metrics.sources import Video

VIDEO_METRICS = ("fid", "fvd", "clip_av", "av_align", "accuracy", "sync", "drift")
METRICS = (*VIDEO_METRICS, "prior_coverage")  # prior_coverage: of --checkpoint's prior, no videos
JUDGED = ("accuracy", "drift", "prior_coverage")  # the metrics that need the frame judge


class EvaluationError(ValueError):
    """A user error in the evaluation settings."""


def parse_metrics(spec: str) -> list[str]:
    """`"fid,fvd"` -> `["fid", "fvd"]`, a non-empty subset of `METRICS`."""
    names = [name.strip() for name in spec.split(",") if name.strip()]
    unknown = sorted(set(names) - set(METRICS))
    if unknown or not names:
        raise EvaluationError(
            f"--metrics must be a comma-separated subset of {','.join(METRICS)}, got {spec!r}"
        )
    return names


@dataclass
class EvaluationSettings:
    """The options of `sgvideo evaluate` (its command line is built from these fields).

    Args:
        generated: folder of generated video files.
        checkpoint: stage-2 checkpoint: generate one video per real clip's sound instead.
        data: LandscapeDataModule arguments (root, cache_dir, image_size, fps, test_fraction,
            seed, ...): its prepared test split is the real set; e.g. --data.root DIR
        real_dir: folder of real video files instead.
        metrics: comma-separated subset of fid,fvd,clip_av,av_align,accuracy,sync,drift,
            prior_coverage (default: all but prior_coverage). prior_coverage (with
            --checkpoint): the share of 500 random images of the checkpoint's StyleGAN2 prior
            that the frame judge labels with probability >= 0.8, overall and per category.
        num_videos: videos per side (at most).
        num_frames: frames per evaluated clip.
        stride: take every stride-th frame.
        fvd_fps: resample videos to this rate before taking the clip's frames
            (FID/FVD/CLIP-AV): 16 frames at 8 fps span 2 s.
        resolution: frames are centre-cropped to a square and resized to this (null: keep).
        feature_net: real: FID Inception and I3D weight files; tiny: random networks
            (demo/tests only, numbers not comparable).
        fid_weights: pt_inception-2015-12-05-6726825d.pth path.
        i3d_weights: i3d_torchscript.pt path.
        audio_encoder: clip_av: stage-0 align checkpoint (or the authors' resnet18.pth).
        clip: clip_av: CLIP weights path or 'tiny' (default: the align checkpoint's).
        judge: accuracy/drift: a saved frame judge (default: fitted on --data's training
            split and cached, see `sgvideo judge fit`).
        judge_refit: refit the cached frame judge.
        drift_seconds: length of the drift videos' sounds.
        ablation: with --checkpoint: also score random latents and stage 1 alone (the
            ablation table).
        sample_rate: rate audio is decoded at.
        score_real: also score clip_av/av_align on real.
        batch_size: clips per feature-network batch.
        device: torch device.
        seed: real-clip choice and offsets; generator seeds.
        progress: show progress bars.
        out: folder for report.json/.md.
    """

    generated: str | None = None
    checkpoint: str | None = None
    data: dict | None = None
    real_dir: str | None = None
    metrics: str = ",".join(VIDEO_METRICS)
    num_videos: int = 2048
    num_frames: int = 16
    stride: int = 1
    fvd_fps: float | None = None
    resolution: int | None = 256
    feature_net: Literal["real", "tiny"] = "real"
    fid_weights: str | None = None
    i3d_weights: str | None = None
    audio_encoder: str | None = None
    clip: str | None = None
    judge: str | None = None
    judge_refit: bool = False
    drift_seconds: float = 12.0
    ablation: bool = False
    sample_rate: int = 44100
    score_real: bool = False
    batch_size: int = 8
    device: str = "cpu"
    seed: int = 0
    progress: bool = True
    out: str = "outputs/evaluate"

    @property
    def names(self) -> list[str]:
        """The requested metrics."""
        return parse_metrics(self.metrics)

    def check(self, from_generator: bool = False) -> None:
        """Raise EvaluationError for settings no run can use. `from_generator`: the generated
        videos come from a VideoGenerator given in code instead of --generated/--checkpoint."""
        parse_metrics(self.metrics)
        from_model = self.checkpoint is not None or from_generator
        if (self.generated is not None) == from_model:
            raise EvaluationError(
                "give the generated videos with exactly one of --generated or --checkpoint"
            )
        if self.ablation and self.checkpoint is None:
            raise EvaluationError("--ablation needs --checkpoint (a stage-2 checkpoint)")
        if "prior_coverage" in self.names and self.checkpoint is None:
            raise EvaluationError(
                "prior_coverage needs --checkpoint (a stage-2 checkpoint: its StyleGAN2 prior)"
            )
        for option in ("num_videos", "num_frames", "stride", "batch_size"):
            if getattr(self, option) < 1:
                raise EvaluationError(f"--{option.replace('_', '-')} must be at least 1")
        if self.fvd_fps is not None and self.fvd_fps <= 0:
            raise EvaluationError("--fvd-fps must be positive")
        if (self.data is None) == (self.real_dir is None):
            raise EvaluationError("give the real videos with exactly one of --data or --real-dir")

    def frame_step(self, video: Video) -> float:
        """Video frames between two evaluated frames: --stride, at --fvd-fps when given."""
        return self.stride * (video.fps / self.fvd_fps if self.fvd_fps else 1.0)
