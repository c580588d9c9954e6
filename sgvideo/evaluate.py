"""`sgvideo evaluate`: does a generated video follow its sound (category accuracy by a frame
judge, loudness-motion sync, drift, AV-Align), and FID, FVD and the CLIP audio-visual score of
generated videos against real ones, written to report.json and report.md with every setting
that changes them. `--ablation` adds the table: random latents / stage 1 alone / full model.

Real videos: the prepared test split of a LandscapeDataModule (`--data`, the `data.init_args`
block of a stage config) or a folder of video files (`--real-dir`). Generated videos: a folder
of video files (`--generated`) or a stage-2 checkpoint (`--checkpoint`, one video per real
clip's sound). Defaults follow StyleGAN-V: 2048 videos of 16 consecutive frames each side,
real clips at a random offset, generated clips from frame 0.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Literal

import numpy as np
import torch
from jsonargparse import ActionConfigFile, ArgumentParser
from tqdm import tqdm

from sgvideo.audio import LogMel, resample, segment_for_frames
from sgvideo.errors import USER_ERRORS, reports_user_errors
from sgvideo.files import require_file
from sgvideo.judge import load_or_fit_judge
from sgvideo.metrics import FID, FVD, AVAlign, CLIPAudioVisualScore
from sgvideo.metrics.category import clip_zero_shot
from sgvideo.metrics.following import FollowingMeasures, long_sound
from sgvideo.metrics.judge import FrameJudge
from sgvideo.metrics.report import TINY_WARNING, cell, write_report
from sgvideo.metrics.sources import (
    Video,
    VideoGenerator,
    category_from_path,
    clip_indices,
    datamodule_from_options,
    generate_video,
    model_frames,
    read_cached_clip,
    read_video_file,
    video_files,
)
from sgvideo.metrics.tiny import TinyImageFeatures, TinyVideoFeatures
from sgvideo.metrics.weights import FID_INCEPTION, I3D_TORCHSCRIPT, sha256_prefix

METRICS = ("fid", "fvd", "clip_av", "av_align", "accuracy", "sync", "drift")
JUDGED = ("accuracy", "drift")  # the metrics that need the frame judge
VideoLoader = Callable[[], Video]


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="sgvideo evaluate", description=__doc__)
    add = parser.add_argument
    add("--config", action=ActionConfigFile, help="YAML file with any of these options")
    add("--generated", type=str | None, default=None, help="folder of generated video files")
    add(
        "--checkpoint",
        type=str | None,
        default=None,
        help="stage-2 checkpoint: generate one video per real clip's sound instead",
    )
    add(
        "--data",
        type=dict | None,
        default=None,
        help="LandscapeDataModule arguments (root, cache_dir, image_size, fps, test_fraction, "
        "seed, ...): its prepared test split is the real set; e.g. --data.root DIR",
    )
    add("--real-dir", type=str | None, default=None, help="folder of real video files instead")
    add("--metrics", type=str, default=",".join(METRICS), help="comma-separated subset")
    add("--num-videos", type=int, default=2048, help="videos per side (at most)")
    add("--num-frames", type=int, default=16, help="frames per evaluated clip")
    add("--stride", type=int, default=1, help="take every stride-th frame")
    add(
        "--fvd-fps",
        type=float | None,
        default=None,
        help="resample videos to this rate before taking the clip's frames (FID/FVD/CLIP-AV): "
        "16 frames at 8 fps span 2 s",
    )
    add(
        "--resolution",
        type=int | None,
        default=256,
        help="frames are centre-cropped to a square and resized to this (null: keep)",
    )
    add(
        "--feature-net",
        type=Literal["real", "tiny"],
        default="real",
        help="real: FID Inception and I3D weight files; tiny: random networks (demo/tests "
        "only, numbers not comparable)",
    )
    add("--fid-weights", type=str | None, default=None, help=f"{FID_INCEPTION.filename} path")
    add("--i3d-weights", type=str | None, default=None, help=f"{I3D_TORCHSCRIPT.filename} path")
    add(
        "--audio-encoder",
        type=str | None,
        default=None,
        help="clip_av: stage-0 align checkpoint (or the authors' resnet18.pth)",
    )
    add(
        "--clip",
        type=str | None,
        default=None,
        help="clip_av: CLIP weights path or 'tiny' (default: the align checkpoint's)",
    )
    add(
        "--judge",
        type=str | None,
        default=None,
        help="accuracy/drift: a saved frame judge (default: fitted on --data's training split "
        "and cached, see `sgvideo judge fit`)",
    )
    add("--judge-refit", type=bool, default=False, help="refit the cached frame judge")
    add("--drift-seconds", type=float, default=12.0, help="length of the drift videos' sounds")
    add(
        "--ablation",
        type=bool,
        default=False,
        help="with --checkpoint: also score random latents and stage 1 alone (the ablation table)",
    )
    add("--sample-rate", type=int, default=44100, help="rate audio is decoded at")
    add("--score-real", type=bool, default=False, help="also score clip_av/av_align on real")
    add("--batch-size", type=int, default=8, help="clips per feature-network batch")
    add("--device", type=str, default="cpu")
    add("--seed", type=int, default=0, help="real-clip choice and offsets; generator seeds")
    add("--progress", type=bool, default=True)
    add("--out", type=str, default="outputs/evaluate", help="folder for report.json/.md")
    return parser


class EvaluationError(ValueError):
    """A user error in the evaluation settings."""


@dataclass
class VideoSet:
    """Lazily loaded videos of one side and how they were obtained."""

    loaders: list[VideoLoader]
    source: str
    decoding: str
    real: bool
    data: Any = None  # the LandscapeDataModule of a real set from --data
    drift: list[VideoLoader] = field(default_factory=list)  # long videos (generated side)


@dataclass
class AudioVisual:
    """CLIP-AV's encoders and the sound front end they were trained with."""

    audio_encoder: torch.nn.Module
    image_encoder: Callable[[torch.Tensor], torch.Tensor]
    logmel: LogMel
    sample_rate: int
    window_seconds: float
    device: str
    weights: dict[str, str]


@dataclass
class SideMetrics:
    """The per-video metrics of one side (None when not requested)."""

    clip_av: CLIPAudioVisualScore | None = None
    av_align: AVAlign | None = None
    following: FollowingMeasures | None = None


def parse_metrics(spec: str) -> list[str]:
    names = [name.strip() for name in spec.split(",") if name.strip()]
    unknown = sorted(set(names) - set(METRICS))
    if unknown or not names:
        raise EvaluationError(
            f"--metrics must be a comma-separated subset of {','.join(METRICS)}, got {spec!r}"
        )
    return names


def real_set(args) -> VideoSet:
    if (args.data is None) == (args.real_dir is None):
        raise EvaluationError("give the real videos with exactly one of --data or --real-dir")
    if args.real_dir is not None:
        return _folder_set(args, args.real_dir, real=True)
    data = datamodule_from_options(args.data)
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


def _folder_set(args, folder: str, real: bool) -> VideoSet:
    """Every video file under `folder`; its category from its sub-folder or file name."""
    files = video_files(folder)
    loaders = [
        partial(read_video_file, f, args.sample_rate, category_from_path(f, folder)) for f in files
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
    sound. Imported here: the stage-2 model needs Lightning, which folder-only runs do not."""
    from sgvideo.generate import SoundToVideo

    return SoundToVideo.from_checkpoint(checkpoint, device=device)


def check_generated_source(args, generator: VideoGenerator | None) -> None:
    from_model = args.checkpoint is not None or generator is not None
    if (args.generated is not None) == from_model:
        raise EvaluationError(
            "give the generated videos with exactly one of --generated or --checkpoint"
        )
    if args.ablation and args.checkpoint is None:
        raise EvaluationError("--ablation needs --checkpoint (a stage-2 checkpoint)")


def generated_set(
    args, real: VideoSet, generator: VideoGenerator | None, name: str | None = None
) -> VideoSet:
    check_generated_source(args, generator)
    if args.generated is not None:
        return _folder_set(args, args.generated, real=False)
    generator = generator or checkpoint_generator(args.checkpoint, args.device)
    sounds = real.loaders

    def make(i: int) -> Video:
        return generate_video(generator, sounds[i % len(sounds)](), seed=args.seed + i)

    return VideoSet(
        [partial(make, i) for i in range(args.num_videos)],
        f"{name or args.checkpoint or 'generator'}: video i from the sound of real clip i mod "
        f"{len(sounds)}, seed {args.seed} + i",
        "frames straight from the generator (no mp4 round trip), quantised to uint8",
        real=False,
        drift=_drift_loaders(args, real, generator),
    )


def _drift_loaders(args, real: VideoSet, generator: VideoGenerator) -> list[VideoLoader]:
    """One long video per category: its real test sounds joined to >= --drift-seconds."""
    if "drift" not in parse_metrics(args.metrics):
        return []
    by_category: dict[str, list[VideoLoader]] = {}
    for load in real.loaders:
        video = load()
        if video.category is not None and video.audio is not None:
            by_category.setdefault(video.category, []).append(load)

    def make(category: str) -> Video:
        pieces = [load() for load in by_category[category]]
        sound = long_sound(pieces, args.drift_seconds, category)
        return generate_video(generator, sound, seed=args.seed)

    return [partial(make, category) for category in sorted(by_category)]


def feature_networks(args, names: Sequence[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """FID/FVD metrics for the requested names, and what their networks are (for the report)."""
    metrics: dict[str, Any] = {}
    described: dict[str, str] = {}
    if args.feature_net == "tiny":
        if "fid" in names:
            metrics["fid"] = FID(feature_extractor=TinyImageFeatures(seed=args.seed))
            described["fid"] = "TinyImageFeatures (random 2-D CNN, 32-d): NOT FID"
        if "fvd" in names:
            metrics["fvd"] = FVD(
                feature_extractor=TinyVideoFeatures(seed=args.seed), num_frames=args.num_frames
            )
            described["fvd"] = "TinyVideoFeatures (random 3-D CNN, 32-d): NOT FVD"
        return metrics, described
    if "fid" in names:
        path = FID_INCEPTION.resolve(args.fid_weights)
        metrics["fid"] = FID(weights_path=path)
        described["fid"] = (
            f"pytorch-fid Inception-v3 pool3, {path.name} sha256 {sha256_prefix(path)}"
        )
    if "fvd" in names:
        path = I3D_TORCHSCRIPT.resolve(args.i3d_weights)
        metrics["fvd"] = FVD(weights_path=path, num_frames=args.num_frames)
        described["fvd"] = f"StyleGAN-V I3D TorchScript, {path.name} sha256 {sha256_prefix(path)}"
    return metrics, described


def audio_visual(args) -> AudioVisual:
    """CLIP-AV's encoders from an align checkpoint (its CLIP and mel settings) or raw weights."""
    from sgvideo.models.audio_encoder import load_audio_encoder
    from sgvideo.models.clip_model import clip_image_embed, load_clip

    if args.audio_encoder is None:
        raise EvaluationError("clip_av needs --audio-encoder (a stage-0 align checkpoint)")
    encoder = load_audio_encoder(args.audio_encoder)
    raw = torch.load(args.audio_encoder, map_location="cpu", weights_only=True)
    hp = dict(raw.get("hyper_parameters", {})) if "state_dict" in raw else {}
    spec = args.clip or hp.get("clip")
    clip = load_clip(spec, device=args.device)
    rate = int(hp.get("sample_rate", args.sample_rate))
    logmel = LogMel(
        rate,
        n_fft=hp.get("n_fft", 2048),
        hop_length=hp.get("hop_length", 512),
        n_mels=hp.get("n_mels", 128),
    )
    clip_name = str(spec) if spec in (None, "tiny") else f"{spec} sha256 {sha256_prefix(spec)}"
    return AudioVisual(
        audio_encoder=encoder.to(args.device),
        image_encoder=partial(clip_image_embed, clip),
        logmel=logmel.to(args.device),
        sample_rate=rate,
        window_seconds=float(hp.get("window_seconds", 1 / 3)),
        device=args.device,
        weights={
            "audio_encoder": f"{args.audio_encoder} sha256 {sha256_prefix(args.audio_encoder)}",
            "clip": clip_name,
        },
    )


def frame_mels(av: AudioVisual, video: Video, picks: np.ndarray) -> torch.Tensor:
    """Log-mel of each evaluated frame's sound window (frames `picks`): "t n_mels time"."""
    wave = torch.from_numpy(np.array(video.audio, dtype=np.float32))
    wave = resample(wave, video.sample_rate, av.sample_rate)
    first, span = int(picks[0]), int(picks[-1] - picks[0]) + 1
    windows = segment_for_frames(wave, av.sample_rate, span, video.fps, av.window_seconds, first)
    return av.logmel(windows[torch.from_numpy(picks - first)].to(av.device))


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


def frame_step(args, video: Video) -> float:
    """Video frames between two evaluated frames: --stride, at --fvd-fps when given."""
    return args.stride * (video.fps / args.fvd_fps if args.fvd_fps else 1.0)


def score_set(
    videos: VideoSet,
    args,
    feeder: FrechetFeeder,
    side: SideMetrics,
    av: AudioVisual | None,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """Feed up to --num-videos usable videos of one side to the metrics; returns counts."""
    order = rng.permutation(len(videos.loaders)) if videos.real else range(len(videos.loaders))
    counts: dict[str, Any] = {"videos": 0, "skipped_too_short": 0, "without_sound": 0}
    name = "real" if videos.real else "generated"
    spans: set[float] = set()
    with tqdm(total=args.num_videos, desc=name, unit="video", disable=not args.progress) as bar:
        for index in order:
            if counts["videos"] == args.num_videos:
                break
            video = videos.loaders[index]()
            step = frame_step(args, video)
            span = int(clip_indices(0, args.num_frames, step)[-1]) + 1
            if len(video.frames) < span:
                counts["skipped_too_short"] += 1
                continue
            start = int(rng.integers(len(video.frames) - span + 1)) if videos.real else 0
            clip = model_frames(video.clip(start, args.num_frames, step), args.resolution)
            spans.add(round(args.num_frames * step / video.fps, 4))
            feeder.add(clip, videos.real)
            if side.following is not None:
                side.following.update(video)
            if side.av_align is not None or side.clip_av is not None:
                if video.audio is None:
                    counts["without_sound"] += 1
                else:
                    picks = clip_indices(start, args.num_frames, step)
                    _score_sound(video, clip, picks, args, side, av)
            counts["videos"] += 1
            bar.update()
    feeder.flush(videos.real)
    if side.following is not None:
        for load in tqdm(videos.drift, desc=f"{name} drift", disable=not args.progress):
            side.following.update_drift(load())
        counts.update(side.following.skip_counts())
        counts["notes"] = [f"{name}: {note}" for note in side.following.notes()]
    counts["clip_seconds"] = sorted(spans)
    return counts


def _score_sound(
    video: Video, clip: torch.Tensor, picks: np.ndarray, args, side: SideMetrics, av
) -> None:
    """AV-Align on the whole video and its sound; CLIP-AV on the evaluated clip's frames."""
    if side.av_align is not None:
        frames = torch.from_numpy(np.array(video.frames)).permute(0, 3, 1, 2)[None]
        wave = torch.from_numpy(np.array(video.audio, dtype=np.float32))[None]
        side.av_align.update(frames, wave, video.sample_rate, video.fps)
    if side.clip_av is not None:
        mel = frame_mels(av, video, picks)
        side.clip_av.update(clip[None].to(args.device), mel[None])


def frame_judge(args, real: VideoSet) -> tuple[FrameJudge, dict[str, Any]]:
    """The --judge file, or the judge of --data's training split (fitted once, cached)."""
    if args.judge is not None:
        judge, info = FrameJudge.load(require_file(args.judge, "frame judge"))
        return judge, {**info, "path": args.judge}
    if real.data is None:
        raise EvaluationError(
            "accuracy and drift need the frame judge: give --data (it is fitted on the training "
            "split) or --judge (a file `sgvideo judge fit` wrote)"
        )
    return load_or_fit_judge(real.data, refit=args.judge_refit)


def zero_shot_classifier(args, judge: FrameJudge):
    """CLIP zero-shot over the judge's categories, when --clip names real CLIP weights."""
    if args.clip in (None, "tiny"):
        return None
    from sgvideo.models.clip_model import load_clip

    return clip_zero_shot(load_clip(args.clip, device=args.device), judge.categories)


class Evaluation:
    """One evaluation run: the real side scored once, then any number of generated sets."""

    def __init__(self, args) -> None:
        self.args = args
        self.names = parse_metrics(args.metrics)
        for option in ("num_videos", "num_frames", "stride", "batch_size"):
            if getattr(args, option) < 1:
                raise EvaluationError(f"--{option.replace('_', '-')} must be at least 1")
        if args.fvd_fps is not None and args.fvd_fps <= 0:
            raise EvaluationError("--fvd-fps must be positive")
        self.real = real_set(args)
        self.real_frechet, self.networks = self._frechet()
        self.av = audio_visual(args) if "clip_av" in self.names else None
        self.judge, self.judge_info = (
            frame_judge(args, self.real) if set(JUDGED) & set(self.names) else (None, None)
        )
        self.zero_shot = zero_shot_classifier(args, self.judge) if self.judge else None
        self.real_side = self._side(real=True)
        self.real_values: dict[str, Any] = {}
        self.real_counts = score_set(
            self.real,
            args,
            FrechetFeeder(self.real_frechet, args.batch_size, args.device),
            self.real_side,
            self.av,
            np.random.default_rng(args.seed),
        )
        self.real_values = self._side_values(self.real_side)

    def _frechet(self) -> tuple[dict[str, Any], dict[str, str]]:
        metrics, described = feature_networks(self.args, self.names)
        for metric in metrics.values():
            metric.to(self.args.device)
        return metrics, described

    def _side(self, real: bool) -> SideMetrics:
        args, names, av = self.args, self.names, self.av
        av_scored = not real or args.score_real
        judge = self.judge if "accuracy" in names or "drift" in names else None
        following = None
        if judge is not None or "sync" in names:
            following = FollowingMeasures(
                judge,
                sync="sync" in names,
                chance_sync=not real,
                clip_classifier=self.zero_shot,
                drift_seconds=args.drift_seconds,
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

    def score(self, generated: VideoSet) -> tuple[dict[str, Any], dict[str, Any]]:
        """Values and counts of one generated set (FID/FVD against the real side's features)."""
        frechet, _ = self._frechet()
        side = self._side(real=False)
        feeder = FrechetFeeder(frechet, self.args.batch_size, self.args.device)
        counts = score_set(
            generated, self.args, feeder, side, self.av, np.random.default_rng(self.args.seed)
        )
        values = {}
        for name, metric in frechet.items():
            metric.merge_state(self.real_frechet[name])  # the real side's feature statistics
            values[name] = float(metric.compute())
        return values | self._side_values(side), counts


def evaluate(args, generator: VideoGenerator | None = None) -> dict[str, Any]:
    """Run the evaluation `args` describe (parsed by `build_parser`); returns the report.

    `generator` replaces the checkpoint's VideoGenerator (generated from the real sounds).
    With --ablation the report also holds `ablation`: the same measures for random latents,
    stage 1 alone and the full model (the main result, generated from the checkpoint).
    """
    check_generated_source(args, generator)
    run = Evaluation(args)
    generated = generated_set(args, run.real, generator)
    values, counts = run.score(generated)
    values |= {f"real_{name}": value for name, value in run.real_values.items()}
    report = _report(args, run, generated, counts, values)
    if args.ablation:
        from sgvideo.generate import SoundToVideo
        from sgvideo.metrics.ablation import FULL_MODEL, ablation_baselines

        model = SoundToVideo.from_checkpoint(args.checkpoint, device=args.device)
        table = {}
        for variant, source in ablation_baselines(model).items():
            variant_set = generated_set(args, run.real, source, name=variant)
            table[variant], variant_counts = run.score(variant_set)
            report["protocol"]["skipped"][f"ablation: {variant}"] = _skips(variant_counts)
            report["notes"] += [f"{variant}, {note}" for note in variant_counts.get("notes", [])]
        table[FULL_MODEL] = {k: v for k, v in values.items() if not k.startswith("real_")}
        report["ablation"] = table
    return report


def _skips(counts: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in counts.items() if k not in ("videos", "clip_seconds", "notes")}


def _report(args, run: Evaluation, generated: VideoSet, counts, values) -> dict[str, Any]:
    real = run.real
    weights = dict(run.networks)
    if run.av is not None:
        weights.update(run.av.weights)
    step = f"stride {args.stride}" + (f" at {args.fvd_fps:g} fps" if args.fvd_fps else "")
    protocol = {
        "metrics": ",".join(run.names),
        "feature_networks": weights,
        "real_videos": run.real_counts["videos"],
        "generated_videos": counts["videos"],
        "requested_videos_per_side": args.num_videos,
        "frames_per_clip": args.num_frames,
        "frame_stride": args.stride,
        "fvd_fps": args.fvd_fps,
        "clip_span_seconds": {
            "real": run.real_counts["clip_seconds"],
            "generated": counts["clip_seconds"],
        },
        "resolution": (
            f"{args.resolution} px (centre square crop, bilinear antialiased resize)"
            if args.resolution
            else "as decoded"
        ),
        "real_source": real.source,
        "real_decoding": real.decoding,
        "real_sampling": (
            f"random subset and one random {args.num_frames}-frame offset per clip ({step}, seed "
            f"{args.seed}); clips shorter than the span skipped"
        ),
        "generated_source": generated.source,
        "generated_decoding": generated.decoding,
        "generated_sampling": f"first {args.num_frames} frames ({step}) of each",
        "fid_images": "every frame of every evaluated clip; covariance / (n - 1) (pytorch-fid)",
        "fvd_protocol": (
            "StyleGAN-V: uint8 frames, I3D rescale=True resize=True (224 px) "
            "return_features=True; covariance / n"
        ),
        "av_align_input": "whole videos and their sound (the reference's protocol)",
        "following_input": "whole videos; sync against each video's own sound, chance against "
        "the sound of the video scored before it",
        "drift": (
            f"generated videos of at least {args.drift_seconds:g} s"
            if args.generated
            else f"one video per category, its test sounds joined to >= {args.drift_seconds:g} s"
        )
        + "; judge accuracy over the first and the last third",
        "skipped": {"generated": _skips(counts), "real": _skips(run.real_counts)},
        "device": args.device,
        "processes": 1,
        "seed": args.seed,
        "torch": torch.__version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    report: dict[str, Any] = {"metrics": values, "protocol": protocol}
    report["notes"] = run.real_counts.get("notes", []) + counts.get("notes", [])
    if run.judge is not None:
        report["judge"] = {"categories": run.judge.categories, **run.judge_info}
    report["comparable"] = args.feature_net == "real"
    if args.feature_net == "tiny":
        report["warning"] = TINY_WARNING
    return report


@reports_user_errors("sgvideo evaluate", (*USER_ERRORS, ImportError))
def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, or a parse error already printed
        return int(stop.code or 0)
    report = evaluate(args)
    json_path, md_path = write_report(report, args.out)
    for name, value in report["metrics"].items():
        print(f"{name}: {cell(value)}")
    for note in report["notes"]:
        print(f"note: {note}", file=sys.stderr)
    if report.get("warning"):
        print(f"warning: {report['warning']}")
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
