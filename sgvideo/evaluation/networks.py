"""The networks an evaluation scores with: FID/FVD feature networks, CLIP-AV's audio and image
encoders, the frame judge and CLIP zero-shot, each with what it is (for the report)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch

from sgvideo.audio import LogMel, MelSettings, resample, segment_for_frames
from sgvideo.evaluation.sets import VideoSet
from sgvideo.evaluation.settings import JUDGED, EvaluationError, EvaluationSettings
from sgvideo.files import require_file
from sgvideo.judge import load_or_fit_judge
from sgvideo.metrics import FID, FVD
from sgvideo.metrics.category import clip_zero_shot
from sgvideo.metrics.judge import FrameJudge
from sgvideo.metrics.sources import Video
from sgvideo.metrics.tiny import TinyImageFeatures, TinyVideoFeatures
from sgvideo.metrics.weights import FID_INCEPTION, I3D_TORCHSCRIPT, sha256_prefix


def feature_networks(
    settings: EvaluationSettings, names: Sequence[str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """FID/FVD metrics for the requested names, and what their networks are (for the report)."""
    metrics: dict[str, Any] = {}
    described: dict[str, str] = {}
    if settings.feature_net == "tiny":
        if "fid" in names:
            metrics["fid"] = FID(feature_extractor=TinyImageFeatures(seed=settings.seed))
            described["fid"] = "TinyImageFeatures (random 2-D CNN, 32-d): NOT FID"
        if "fvd" in names:
            features = TinyVideoFeatures(seed=settings.seed)
            metrics["fvd"] = FVD(feature_extractor=features, num_frames=settings.num_frames)
            described["fvd"] = "TinyVideoFeatures (random 3-D CNN, 32-d): NOT FVD"
        return metrics, described
    if "fid" in names:
        path = FID_INCEPTION.resolve(settings.fid_weights)
        metrics["fid"] = FID(weights_path=path)
        described["fid"] = (
            f"pytorch-fid Inception-v3 pool3, {path.name} sha256 {sha256_prefix(path)}"
        )
    if "fvd" in names:
        path = I3D_TORCHSCRIPT.resolve(settings.i3d_weights)
        metrics["fvd"] = FVD(weights_path=path, num_frames=settings.num_frames)
        described["fvd"] = f"StyleGAN-V I3D TorchScript, {path.name} sha256 {sha256_prefix(path)}"
    return metrics, described


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

    def frame_mels(self, video: Video, picks: np.ndarray) -> torch.Tensor:
        """Log-mel of each evaluated frame's sound window (frames `picks`): "t n_mels time"."""
        wave = torch.from_numpy(np.array(video.audio, dtype=np.float32))
        wave = resample(wave, video.sample_rate, self.sample_rate)
        first, span = int(picks[0]), int(picks[-1] - picks[0]) + 1
        windows = segment_for_frames(
            wave, self.sample_rate, span, video.fps, self.window_seconds, first
        )
        return self.logmel(windows[torch.from_numpy(picks - first)].to(self.device))


def audio_visual(settings: EvaluationSettings) -> AudioVisual:
    """CLIP-AV's encoders from an align checkpoint (its CLIP and mel settings) or raw weights."""
    from sgvideo.models.audio_encoder import load_audio_encoder
    from sgvideo.models.clip_model import clip_image_embed, load_clip

    path, device = settings.audio_encoder, settings.device
    if path is None:
        raise EvaluationError("clip_av needs --audio-encoder (a stage-0 align checkpoint)")
    encoder = load_audio_encoder(path)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    hp = dict(raw.get("hyper_parameters", {})) if "state_dict" in raw else {}
    spec = settings.clip or hp.get("clip")
    clip = load_clip(spec, device=device)
    # the authors' resnet18.pth has no hyper-parameters: their settings at --sample-rate
    mel = MelSettings.from_hparams(hp) if hp else MelSettings(sample_rate=settings.sample_rate)
    clip_name = str(spec) if spec in (None, "tiny") else f"{spec} sha256 {sha256_prefix(spec)}"
    return AudioVisual(
        audio_encoder=encoder.to(device),
        image_encoder=partial(clip_image_embed, clip),
        logmel=mel.log_mel().to(device),
        sample_rate=mel.sample_rate,
        window_seconds=float(hp.get("window_seconds", 1 / 3)),
        device=device,
        weights={"audio_encoder": f"{path} sha256 {sha256_prefix(path)}", "clip": clip_name},
    )


def frame_judge(settings: EvaluationSettings, real: VideoSet) -> tuple[FrameJudge, dict[str, Any]]:
    """The --judge file, or the judge of --data's training split (fitted once, cached)."""
    if settings.judge is not None:
        judge, info = FrameJudge.load(require_file(settings.judge, "frame judge"))
        return judge, {**info, "path": settings.judge}
    if real.data is None:
        raise EvaluationError(
            f"{', '.join(JUDGED)} need the frame judge: give --data (it is fitted on the "
            "training split) or --judge (a file `sgvideo judge fit` wrote)"
        )
    return load_or_fit_judge(real.data, refit=settings.judge_refit)


def zero_shot_classifier(settings: EvaluationSettings, judge: FrameJudge):
    """CLIP zero-shot over the judge's categories, when --clip names real CLIP weights."""
    if settings.clip in (None, "tiny"):
        return None
    from sgvideo.models.clip_model import load_clip

    return clip_zero_shot(load_clip(settings.clip, device=settings.device), judge.categories)
