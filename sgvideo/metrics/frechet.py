"""Fréchet distance between Gaussians, and the feature-statistics Metric that FID and FVD share."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from scipy import linalg
from torch import nn
from torchmetrics import Metric


def frechet_distance(
    mu1: np.ndarray | torch.Tensor,
    sigma1: np.ndarray | torch.Tensor,
    mu2: np.ndarray | torch.Tensor,
    sigma2: np.ndarray | torch.Tensor,
    eps: float = 1e-6,
) -> float:
    """||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 sqrt(sigma1 sigma2)), in float64.

    Same math as pytorch-fid's `calculate_frechet_distance`: scipy's `sqrtm`, and when the
    square root is not finite (singular product) it is retried with `eps` added to both
    diagonals. One difference: where pytorch-fid raises on a large imaginary component we warn
    and keep the real part, so a small evaluation still gives a (flagged) number.
    """
    mu1, mu2 = (np.atleast_1d(_float64(m)) for m in (mu1, mu2))
    sigma1, sigma2 = (np.atleast_2d(_float64(s)) for s in (sigma1, sigma2))
    if mu1.shape != mu2.shape or mu1.ndim != 1:
        raise ValueError(f"means must be vectors of one size, got {mu1.shape} and {mu2.shape}")
    d = mu1.shape[0]
    if sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(
            f"covariances must be ({d}, {d}) like the means, got {sigma1.shape} and {sigma2.shape}"
        )
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(d) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        imaginary = np.abs(np.diagonal(covmean).imag).max()
        if imaginary > 1e-3:
            warnings.warn(
                "Fréchet distance: sqrt(sigma1 sigma2) has an imaginary component of "
                f"{imaginary:.3g} (too few samples for the feature size?); keeping its real part",
                RuntimeWarning,
                stacklevel=2,
            )
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def _float64(x: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


class FrechetFeatureMetric(Metric):
    """Fréchet distance between the feature distributions of real and generated samples.

    State: per side the feature sum, the sum of outer products and the count, in float64 with
    sum reduction, so states from several processes (DDP) or objects (`merge_state`) add up
    exactly; mean and covariance are formed only in `compute`. `unbiased` picks the covariance
    normaliser: n - 1 (pytorch-fid's np.cov) or n (StyleGAN-V's FeatureStats).
    Subclasses turn their inputs into features and call `_add_features`.
    """

    higher_is_better = False
    is_differentiable = False
    full_state_update = False

    def __init__(self, feature_extractor: nn.Module, num_features: int, unbiased: bool, **kwargs):
        super().__init__(**kwargs)
        self.feature_extractor = feature_extractor.eval().requires_grad_(False)
        self.num_features = int(num_features)
        self.unbiased = unbiased
        d = self.num_features
        for side in ("real", "fake"):
            self.add_state(f"{side}_sum", torch.zeros(d, dtype=torch.float64), "sum")
            self.add_state(f"{side}_outer", torch.zeros(d, d, dtype=torch.float64), "sum")
            self.add_state(f"{side}_n", torch.zeros((), dtype=torch.float64), "sum")

    @torch.no_grad()
    def _add_features(self, features: torch.Tensor, real: bool) -> None:
        """Accumulate "b d" features on the real or the generated side."""
        if features.dim() != 2 or features.shape[1] != self.num_features:
            raise ValueError(
                f"feature extractor must return (b, {self.num_features}) features, "
                f"got {tuple(features.shape)}"
            )
        f = features.to(torch.float64)
        side = "real" if real else "fake"
        setattr(self, f"{side}_sum", getattr(self, f"{side}_sum") + f.sum(0))
        setattr(self, f"{side}_outer", getattr(self, f"{side}_outer") + f.T @ f)
        setattr(self, f"{side}_n", getattr(self, f"{side}_n") + f.shape[0])

    def statistics(self, real: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean "d" and covariance "d d" (float64) of one side's features so far."""
        side = "real" if real else "fake"
        n = getattr(self, f"{side}_n")
        if n < 2:
            name = "real" if real else "generated"
            raise ValueError(f"{type(self).__name__} needs at least 2 {name} samples, got {int(n)}")
        mean = getattr(self, f"{side}_sum") / n
        scatter = getattr(self, f"{side}_outer") - n * torch.outer(mean, mean)
        return mean, scatter / (n - 1 if self.unbiased else n)

    def compute(self) -> torch.Tensor:
        mu_real, sigma_real = self.statistics(real=True)
        mu_fake, sigma_fake = self.statistics(real=False)
        value = frechet_distance(mu_fake, sigma_fake, mu_real, sigma_real)
        return torch.tensor(value, dtype=torch.float64)


def count_features(extractor: nn.Module, example: torch.Tensor) -> int:
    """The extractor's `num_features`, or its output width on `example` when it has none."""
    num = getattr(extractor, "num_features", None)
    if num is not None:
        return int(num)
    was_training = extractor.training
    with torch.no_grad():
        out = extractor.eval()(example)
    extractor.train(was_training)
    if out.dim() != 2:
        raise ValueError(f"feature extractor must return (b, d) features, got {tuple(out.shape)}")
    return int(out.shape[1])
