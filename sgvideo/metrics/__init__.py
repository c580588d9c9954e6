"""Evaluation metrics as torchmetrics Metrics: category accuracy, loudness-motion sync,
AV-Align, CLIP audio-visual score, FID, FVD."""

from sgvideo.metrics.av_align import AVAlign, av_align_score
from sgvideo.metrics.category import CategoryAccuracy
from sgvideo.metrics.clip_score import CLIPAudioVisualScore
from sgvideo.metrics.fid import FID
from sgvideo.metrics.frechet import FrechetFeatureMetric, frechet_distance
from sgvideo.metrics.fvd import FVD
from sgvideo.metrics.sync import LoudnessMotionSync
from sgvideo.metrics.tiny import TinyImageFeatures, TinyVideoFeatures

__all__ = [
    "AVAlign",
    "CategoryAccuracy",
    "CLIPAudioVisualScore",
    "FID",
    "FVD",
    "FrechetFeatureMetric",
    "LoudnessMotionSync",
    "TinyImageFeatures",
    "TinyVideoFeatures",
    "av_align_score",
    "frechet_distance",
]
