"""`sgvideo evaluate`: FID, FVD, CLIP audio-visual score and AV-Align of generated videos
against real ones, written to report.json and report.md with every setting that changes them.

Real videos: the prepared test split of a LandscapeDataModule (`--data`, the `data.init_args`
block of a stage config) or a folder of video files (`--real-dir`). Generated videos: a folder
of video files (`--generated`) or a stage-2 checkpoint (`--checkpoint`, one video per real
clip's sound). Defaults follow StyleGAN-V: 2048 videos of 16 consecutive frames each side,
real clips at a random offset, generated clips from frame 0.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Literal

import numpy as np
import torch
from jsonargparse import ActionConfigFile, ArgumentParser
from tqdm import tqdm

from sgvideo.audio import LogMel, segment_for_frames
from sgvideo.errors import USER_ERRORS, reports_user_errors
from sgvideo.metrics import FID, FVD, AVAlign, CLIPAudioVisualScore
from sgvideo.metrics.report import TINY_WARNING, write_report
from sgvideo.metrics.sources import (
    Video,
    VideoGenerator,
    datamodule_from_options,
    generate_video,
    model_frames,
    read_cached_clip,
    read_video_file,
    video_files,
)
from sgvideo.metrics.tiny import TinyImageFeatures, TinyVideoFeatures
from sgvideo.metrics.weights import FID_INCEPTION, I3D_TORCHSCRIPT, sha256_prefix

METRICS = ("fid", "fvd", "clip_av", "av_align")
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
        files = video_files(args.real_dir)
        return VideoSet(
            [partial(read_video_file, f, args.sample_rate) for f in files],
            f"folder {args.real_dir} ({len(files)} videos)",
            "video files decoded with PyAV (native size and frame rate)",
            real=True,
        )
    data = datamodule_from_options(args.data)
    clips = data.test_clips()
    hp = data.hparams
    return VideoSet(
        [partial(read_cached_clip, clip) for clip in clips],
        f"test split of {hp.index_csv or hp.root} ({len(clips)} clips; "
        f"test_fraction {hp.test_fraction}, split seed {hp.seed})",
        f"prepare cache: uint8 frames at {hp.image_size} px (centre square), {hp.fps} fps",
        real=True,
    )


def checkpoint_generator(checkpoint: str, device: str) -> VideoGenerator:
    """The stage-2 model as a VideoGenerator, from `sgvideo.generate.load_video_generator`.

    Expected: `load_video_generator(checkpoint, device) -> callable(waveform "samples" float32,
    sample_rate, fps, seed) -> frames "t 3 h w" in [-1, 1]`, one frame per 1 / fps of sound.
    """
    try:
        from sgvideo.generate import load_video_generator
    except ImportError as error:
        raise EvaluationError(
            "evaluating a checkpoint needs sgvideo.generate.load_video_generator, which this "
            "installation lacks: generate the videos with `sgvideo generate` and pass --generated"
        ) from error
    return load_video_generator(checkpoint, device=device)


def generated_set(args, real: VideoSet, generator: VideoGenerator | None) -> VideoSet:
    from_model = args.checkpoint is not None or generator is not None
    if (args.generated is not None) == from_model:
        raise EvaluationError(
            "give the generated videos with exactly one of --generated or --checkpoint"
        )
    if args.generated is not None:
        files = video_files(args.generated)
        return VideoSet(
            [partial(read_video_file, f, args.sample_rate) for f in files],
            f"folder {args.generated} ({len(files)} videos)",
            "video files decoded with PyAV (native size and frame rate)",
            real=False,
        )
    generator = generator or checkpoint_generator(args.checkpoint, args.device)
    sounds = real.loaders

    def make(i: int) -> Video:
        return generate_video(generator, sounds[i % len(sounds)](), seed=args.seed + i)

    return VideoSet(
        [partial(make, i) for i in range(args.num_videos)],
        f"{args.checkpoint or 'generator'}: video i from the sound of real clip i mod "
        f"{len(sounds)}, "
        f"seed {args.seed} + i",
        "frames straight from the generator (no mp4 round trip), quantised to uint8",
        real=False,
    )


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


def frame_mels(av: AudioVisual, video: Video, start: int, count: int, stride: int) -> torch.Tensor:
    """Log-mel of each evaluated frame's sound window: "t n_mels time"."""
    wave = torch.from_numpy(np.array(video.audio, dtype=np.float32))
    if video.sample_rate != av.sample_rate:
        import torchaudio

        wave = torchaudio.functional.resample(wave, video.sample_rate, av.sample_rate)
    span = (count - 1) * stride + 1
    windows = segment_for_frames(wave, av.sample_rate, span, video.fps, av.window_seconds, start)
    return av.logmel(windows[::stride].to(av.device))


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


def score_set(
    videos: VideoSet,
    args,
    feeder: FrechetFeeder,
    side: SideMetrics,
    av: AudioVisual | None,
    rng: np.random.Generator,
) -> dict[str, int]:
    """Feed up to --num-videos usable videos of one side to the metrics; returns counts."""
    order = rng.permutation(len(videos.loaders)) if videos.real else range(len(videos.loaders))
    counts = {"videos": 0, "skipped_too_short": 0, "without_sound": 0}
    span = (args.num_frames - 1) * args.stride + 1
    name = "real" if videos.real else "generated"
    with tqdm(total=args.num_videos, desc=name, unit="video", disable=not args.progress) as bar:
        for index in order:
            if counts["videos"] == args.num_videos:
                break
            video = videos.loaders[index]()
            if len(video.frames) < span:
                counts["skipped_too_short"] += 1
                continue
            start = int(rng.integers(len(video.frames) - span + 1)) if videos.real else 0
            clip = model_frames(video.clip(start, args.num_frames, args.stride), args.resolution)
            feeder.add(clip, videos.real)
            if side.av_align is not None or side.clip_av is not None:
                if video.audio is None:
                    counts["without_sound"] += 1
                else:
                    _score_sound(video, clip, start, args, side, av)
            counts["videos"] += 1
            bar.update()
    feeder.flush(videos.real)
    return counts


def _score_sound(
    video: Video, clip: torch.Tensor, start: int, args, side: SideMetrics, av: AudioVisual | None
) -> None:
    """AV-Align on the whole video and its sound; CLIP-AV on the evaluated clip's frames."""
    if side.av_align is not None:
        frames = torch.from_numpy(np.array(video.frames)).permute(0, 3, 1, 2)[None]
        wave = torch.from_numpy(np.array(video.audio, dtype=np.float32))[None]
        side.av_align.update(frames, wave, video.sample_rate, video.fps)
    if side.clip_av is not None:
        mel = frame_mels(av, video, start, args.num_frames, args.stride)
        side.clip_av.update(clip[None].to(args.device), mel[None])


def evaluate(args, generator: VideoGenerator | None = None) -> dict[str, Any]:
    """Run the evaluation `args` describe (parsed by `build_parser`); returns the report.

    `generator` replaces the checkpoint's VideoGenerator (generated from the real sounds).
    """
    names = parse_metrics(args.metrics)
    for option in ("num_videos", "num_frames", "stride", "batch_size"):
        if getattr(args, option) < 1:
            raise EvaluationError(f"--{option.replace('_', '-')} must be at least 1")
    real = real_set(args)
    generated = generated_set(args, real, generator)
    frechet, networks = feature_networks(args, names)
    for metric in frechet.values():
        metric.to(args.device)
    av = audio_visual(args) if "clip_av" in names else None

    def side_metrics(scored: bool) -> SideMetrics:
        return SideMetrics(
            clip_av=CLIPAudioVisualScore(av.audio_encoder, av.image_encoder)
            if scored and av is not None
            else None,
            av_align=AVAlign() if scored and "av_align" in names else None,
        )

    sides = {"generated": side_metrics(True), "real": side_metrics(args.score_real)}
    feeder = FrechetFeeder(frechet, args.batch_size, args.device)
    rng = np.random.default_rng(args.seed)
    counts = {
        "generated": score_set(generated, args, feeder, sides["generated"], av, rng),
        "real": score_set(real, args, feeder, sides["real"], av, rng),
    }
    values = {name: float(metric.compute()) for name, metric in frechet.items()}
    for side_name, side in sides.items():
        prefix = "" if side_name == "generated" else "real_"
        for name in ("clip_av", "av_align"):
            metric = getattr(side, name)
            if metric is not None:
                values[prefix + name] = float(metric.compute())
    return _report(args, names, real, generated, counts, values, networks, av)


def _report(args, names, real, generated, counts, values, networks, av) -> dict[str, Any]:
    weights = dict(networks)
    if av is not None:
        weights.update(av.weights)
    protocol = {
        "metrics": ",".join(names),
        "feature_networks": weights,
        "real_videos": counts["real"]["videos"],
        "generated_videos": counts["generated"]["videos"],
        "requested_videos_per_side": args.num_videos,
        "frames_per_clip": args.num_frames,
        "frame_stride": args.stride,
        "resolution": (
            f"{args.resolution} px (centre square crop, bilinear antialiased resize)"
            if args.resolution
            else "as decoded"
        ),
        "real_source": real.source,
        "real_decoding": real.decoding,
        "real_sampling": (
            f"random subset and one random {args.num_frames}-frame offset per clip (seed "
            f"{args.seed}); clips shorter than the span skipped"
        ),
        "generated_source": generated.source,
        "generated_decoding": generated.decoding,
        "generated_sampling": f"first {args.num_frames} frames (stride {args.stride}) of each",
        "fid_images": "every frame of every evaluated clip; covariance / (n - 1) (pytorch-fid)",
        "fvd_protocol": (
            "StyleGAN-V: uint8 frames, I3D rescale=True resize=True (224 px) "
            "return_features=True; covariance / n"
        ),
        "av_align_input": "whole videos and their sound (the reference's protocol)",
        "skipped": {
            side: {k: v for k, v in c.items() if k != "videos"} for side, c in counts.items()
        },
        "device": args.device,
        "processes": 1,
        "seed": args.seed,
        "torch": torch.__version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    report: dict[str, Any] = {"metrics": values, "protocol": protocol}
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
        print(f"{name}: {value:.4f}")
    if report.get("warning"):
        print(f"warning: {report['warning']}")
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
