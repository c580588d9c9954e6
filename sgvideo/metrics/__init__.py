"""Evaluation metrics as torchmetrics Metrics: FID, FVD, CLIP audio-visual score, AV-Align."""

from sgvideo.metrics.av_align import AVAlign, av_align_score
from sgvideo.metrics.clip_score import CLIPAudioVisualScore
from sgvideo.metrics.fid import FID
from sgvideo.metrics.frechet import FrechetFeatureMetric, frechet_distance
from sgvideo.metrics.fvd import FVD
from sgvideo.metrics.tiny import TinyImageFeatures, TinyVideoFeatures

__all__ = [
    "AVAlign",
    "CLIPAudioVisualScore",
    "FID",
    "FVD",
    "FrechetFeatureMetric",
    "TinyImageFeatures",
    "TinyVideoFeatures",
    "av_align_score",
    "frechet_distance",
]
