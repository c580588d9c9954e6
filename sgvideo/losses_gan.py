"""StyleGAN2 training terms: logistic losses, R1 and path-length penalties, style mixing, EMA.

Plain functions following Karras et al. 2020 (and rosinality's train.py, whose checkpoints
we write): the R1 and path-length penalties differentiate through a gradient, so they need
double backward through `stylegan2_ops`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import repeat
from torch import Tensor, nn


def d_logistic_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Discriminator's logistic loss: softplus(-D(real)) + softplus(D(fake)), batch means."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def g_nonsaturating_loss(fake_logits: Tensor) -> Tensor:
    """Generator's non-saturating logistic loss: softplus(-D(G(z))), batch mean."""
    return F.softplus(-fake_logits).mean()


def r1_penalty(real_logits: Tensor, real_images: Tensor) -> Tensor:
    """R1: mean over the batch of ||d D(x) / d x||^2 at real images "b c h w".

    `real_images` must require grad and `real_logits` come from them; the graph is kept
    (create_graph) so the penalty can be back-propagated into the discriminator.
    """
    if not real_images.requires_grad:
        raise ValueError("r1_penalty needs real_images with requires_grad=True")
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return grad.square().flatten(1).sum(1).mean()


def path_length_penalty(
    images: Tensor, w_plus: Tensor, mean_path_length: Tensor, decay: float = 0.01
) -> tuple[Tensor, Tensor, Tensor]:
    """Path-length penalty of images "b c h w" generated from w_plus "b n_latent style_dim".

    The Jacobian-vector length |J^T y| (y: Gaussian image noise scaled by 1/sqrt(h w), the
    squared gradient summed over style_dim and averaged over layers) is pulled toward its
    running mean `a`, updated here as a <- a + decay (mean length - a).
    Returns (penalty, new running mean (detached), per-sample path lengths "b").
    """
    noise = torch.randn_like(images) / math.sqrt(images.shape[-2] * images.shape[-1])
    (grad,) = torch.autograd.grad((images * noise).sum(), w_plus, create_graph=True)
    lengths = grad.square().sum(2).mean(1).sqrt()
    new_mean = mean_path_length + decay * (lengths.mean() - mean_path_length)
    penalty = (lengths - new_mean).square().mean()
    return penalty, new_mean.detach(), lengths


def mix_styles(w1: Tensor, w2: Tensor, n_latent: int, crossover: int) -> Tensor:
    """W+ "b n_latent d" taking layers [0, crossover) from w1 "b d" and the rest from w2 "b d"."""
    if not 0 < crossover < n_latent:
        raise ValueError(f"crossover must be in [1, {n_latent - 1}], got {crossover}")
    first = repeat(w1, "b d -> b n d", n=crossover)
    second = repeat(w2, "b d -> b n d", n=n_latent - crossover)
    return torch.cat([first, second], dim=1)


def sample_w_plus(
    mapping: nn.Module, batch: int, style_dim: int, n_latent: int, mixing_prob: float, device
) -> Tensor:
    """Random W+ "b n_latent style_dim" for training, style-mixed with probability mixing_prob.

    A mixed batch maps two z's and switches from the first to the second at one random layer
    (the same for the whole batch, as in rosinality's Generator).
    """
    if torch.rand(()).item() < mixing_prob:
        w1, w2 = mapping(torch.randn(2 * batch, style_dim, device=device)).chunk(2)
        crossover = int(torch.randint(1, n_latent, ()).item())
        return mix_styles(w1, w2, n_latent, crossover)
    w = mapping(torch.randn(batch, style_dim, device=device))
    return repeat(w, "b d -> b n d", n=n_latent)


@torch.no_grad()
def ema_update(target: nn.Module, source: nn.Module, beta: float) -> None:
    """target <- beta * target + (1 - beta) * source for parameters; buffers are copied."""
    for t, s in zip(target.parameters(), source.parameters(), strict=True):
        t.lerp_(s, 1.0 - beta)
    for t, s in zip(target.buffers(), source.buffers(), strict=True):
        t.copy_(s)


def ema_beta(half_life_steps: float, step: int, rampup: float | None = None) -> float:
    """Per-step EMA decay for a half-life in steps, optionally ramped up as in StyleGAN2-ADA.

    With `rampup`, the half-life is at most rampup * step, so a short run is not dominated by
    the random initial weights.
    """
    half_life = half_life_steps if rampup is None else min(half_life_steps, rampup * step)
    return 0.5 ** (1.0 / half_life) if half_life > 0 else 0.0


def lazy_adam_hparams(
    lr: float, betas: tuple[float, float], every: int
) -> tuple[float, tuple[float, float]]:
    """Adam lr and betas for a network whose regulariser runs every `every` steps.

    Lazy regularisation adds one optimiser step per `every` steps, so the learning rate and
    the momentum decays are scaled by c = every / (every + 1) to keep the effective rates.
    """
    c = every / (every + 1)
    return lr * c, (betas[0] ** c, betas[1] ** c)
