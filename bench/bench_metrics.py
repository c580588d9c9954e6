"""Metric feature extraction speed: FID images/s and FVD videos/s, plus the Fréchet step.

Networks have the real architectures with random weights (no weight files needed):
- FID: pytorch-fid's Inception-v3 (`FIDInceptionV3`), 64 px inputs resized to 299 inside;
- FVD: the I3D exists only as a TorchScript file, so torchvision's S3D (an Inception-style
  3-D CNN of similar cost, 400 outputs) stands in, fed 16-frame clips at 224 px through the
  `FVD` metric (layout change, float64 statistics included).
Rates are per forward through `Metric.update`, on each device asked for; the Fréchet step
(scipy, CPU) comes with the CPU rows.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from sgvideo.metrics import FID, FVD, frechet_distance
from sgvideo.metrics.inception import FIDInceptionV3


class _S3DFeatures(nn.Module):
    """torchvision S3D (random weights) as an I3D stand-in: "b 3 t h w" -> "b 400"."""

    num_features = 400

    def __init__(self) -> None:
        super().__init__()
        from torchvision.models.video import s3d

        self.net = s3d(weights=None)

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        return self.net(videos.float())


def _rate(update, batch: torch.Tensor, reps: int) -> float:
    """Items per second of `update(batch)`, after one warm-up call."""
    update(batch)
    if batch.is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        update(batch)
    if batch.is_cuda:
        torch.cuda.synchronize()
    return reps * batch.shape[0] / (time.perf_counter() - start)


def _frechet_seconds(d: int) -> float:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2 * d, d)), rng.normal(size=(2 * d, d)) + 0.1
    start = time.perf_counter()
    frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    return time.perf_counter() - start


def run(quick: bool, devices: Sequence[str] = ("cpu",)) -> list[dict]:
    rows = []
    for device in devices:
        on_gpu = device == "cuda"
        images, clips = (64 if on_gpu else 4), (8 if on_gpu else 1)
        reps = 1 if quick else 3
        fid = FID(feature_extractor=FIDInceptionV3()).to(device)
        batch = torch.rand(images, 3, 64, 64, device=device) * 2 - 1
        rows.append(
            {
                "name": f"FID Inception-v3 features ({device})",
                "value": _rate(lambda x: fid.update(x, real=True), batch, reps),  # noqa: B023
                "unit": "images/s",
                "device": device,
                "batch": images,
                "input": "64 px, resized to 299",
            }
        )
        fvd = FVD(feature_extractor=_S3DFeatures()).to(device)
        videos = torch.rand(clips, 16, 3, 224, 224, device=device) * 2 - 1
        rows.append(
            {
                "name": f"FVD features, S3D stand-in for I3D ({device})",
                "value": _rate(lambda x: fvd.update(x, real=True), videos, reps),  # noqa: B023
                "unit": "videos/s",
                "device": device,
                "batch": clips,
                "input": "16 frames x 224 px",
                "note": "I3D is TorchScript-only; torchvision S3D (similar cost) stands in",
            }
        )
    if "cpu" in devices:  # the Fréchet step runs on the CPU
        for d in [400] if quick else [400, 2048]:
            rows.append(
                {
                    "name": f"Frechet distance, {d}-d (scipy sqrtm, float64)",
                    "value": _frechet_seconds(d),
                    "unit": "s",
                    "device": "cpu",
                }
            )
    return rows
