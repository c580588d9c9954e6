"""Losses shared by the training stages: CLIP-space distances, InfoNCE, LSGAN."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1 - cos(a, b) along the last dim: "... d", "... d" -> "..." (0 aligned, 2 opposite)."""
    return 1.0 - F.cosine_similarity(a, b, dim=-1)


def label_targets(row_labels: torch.Tensor, col_labels: torch.Tensor) -> torch.Tensor:
    """Soft contrastive targets "r c": each row spread evenly over the columns of its label."""
    same = (row_labels[:, None] == col_labels[None, :]).float()
    counts = same.sum(dim=1, keepdim=True)
    if (counts == 0).any():
        raise ValueError("every row label must occur among the column labels")
    return same / counts


def symmetric_info_nce(
    a: torch.Tensor,
    b: torch.Tensor,
    logit_scale: torch.Tensor | float,
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """CLIP's symmetric InfoNCE between paired rows of "n d" `a` and `b` (cosine logits).

    Without `labels`, row i of `a` and row i of `b` are the only positive pair. With "n"
    `labels`, every pair with equal labels is a positive (targets spread evenly over them), so
    that e.g. several windows of one clip are not pushed apart from each other's partner.
    """
    if a.shape != b.shape or a.dim() != 2:
        raise ValueError(f"a and b must both be 'n d', got {tuple(a.shape)} and {tuple(b.shape)}")
    logits = logit_scale * F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T
    if labels is None:
        labels = torch.arange(a.shape[0], device=a.device)
    targets = label_targets(labels, labels)  # symmetric: the same for both directions
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets))


def class_logits(
    embeds: torch.Tensor, class_embeds: torch.Tensor, logit_scale: torch.Tensor | float
) -> torch.Tensor:
    """Scaled cosine similarities "n d", "k d" -> "n k" (e.g. sounds against text prompts)."""
    return logit_scale * F.normalize(embeds, dim=-1) @ F.normalize(class_embeds, dim=-1).T


def class_info_nce(
    embeds: torch.Tensor,
    class_embeds: torch.Tensor,
    labels: torch.Tensor,
    logit_scale: torch.Tensor | float,
) -> torch.Tensor:
    """Symmetric InfoNCE of "n d" samples against "k d" class prototypes (e.g. text prompts).

    Samples -> classes: cross-entropy over all k classes (every prompt is a negative, also of
    classes absent from the batch). Classes -> samples: each class present in the batch
    against the n samples, its own samples all positives. The mean of the two directions.
    """
    logits = class_logits(embeds, class_embeds, logit_scale)
    to_class = F.cross_entropy(logits, labels)
    present = labels.unique()
    from_class = F.cross_entropy(logits.T[present], label_targets(present, labels))
    return 0.5 * (to_class + from_class)


class LogitScale(nn.Module):
    """CLIP's learnable temperature: exp(s), s initialised at log(1 / 0.07), capped at 100."""

    def __init__(self, init: float = 1 / 0.07, max_scale: float = 100.0) -> None:
        super().__init__()
        if not 0 < init <= max_scale:
            raise ValueError(f"need 0 < init <= max_scale, got {init}, {max_scale}")
        self.log_scale = nn.Parameter(torch.tensor(math.log(init)))
        self.max_log_scale = math.log(max_scale)

    def forward(self) -> torch.Tensor:
        return self.log_scale.clamp(max=self.max_log_scale).exp()


def lsgan_d_loss(real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
    """Least-squares GAN discriminator loss: 0.5 E[(D(real) - 1)^2] + 0.5 E[D(fake)^2]."""
    return 0.5 * ((real_pred - 1).square().mean() + fake_pred.square().mean())


def lsgan_g_loss(fake_pred: torch.Tensor) -> torch.Tensor:
    """Least-squares GAN generator loss: E[(D(fake) - 1)^2]."""
    return (fake_pred - 1).square().mean()


def layout_distance(fake: torch.Tensor, real: torch.Tensor, size: int) -> torch.Tensor:
    """Mean square difference of `size` x `size` area-averaged thumbnails: "... 3 h w" x 2 -> "".

    Compares the scenes' colour layout (sky, ground, a glow, a flash), not their texture.
    """
    thumbnail = lambda x: F.adaptive_avg_pool2d(x.flatten(0, -4), size)
    return F.mse_loss(thumbnail(fake), thumbnail(real))


def frame_detail(frames: torch.Tensor) -> torch.Tensor:
    """Each frame's fine detail: mean |Laplacian| over pixels and channels, "... c h w" -> "..."
    (the grain, streaks and ripples that colour layouts and thumbnails do not see)."""
    flat = frames.flatten(0, -4)
    channels = flat.shape[1]
    kernel = flat.new_tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
    laplacian = F.conv2d(flat, kernel.expand(channels, 1, 3, 3), groups=channels)
    return laplacian.abs().mean(dim=(1, 2, 3)).reshape(frames.shape[:-3])


def detail_distance(fake: torch.Tensor, real: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Mean squared log ratio of each frame's fine detail to its paired real frame's:
    "... c h w" x 2 -> "" (a smooth storm sky stays smooth, rain keeps its streaks)."""
    ratio = (frame_detail(fake) + eps).log() - (frame_detail(real) + eps).log()
    return ratio.square().mean()


def frame_motion(frames: torch.Tensor) -> torch.Tensor:
    """Per-frame motion: mean absolute difference to the previous frame, "b t c h w" -> "b t-1".

    The motion that the sound-following measures correlate with loudness.
    """
    return (frames[:, 1:] - frames[:, :-1]).abs().mean(dim=(2, 3, 4))


def pearson(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Pearson correlation along the last dim: "... n", "... n" -> "..." (0 for a constant)."""
    a = a - a.mean(dim=-1, keepdim=True)
    b = b - b.mean(dim=-1, keepdim=True)
    return (a * b).sum(dim=-1) / (a.norm(dim=-1) * b.norm(dim=-1) + eps)


def motion_matching_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Generated clips move when their paired real clips do, and as much: "b t c h w" x 2 -> "".

    (1 - Pearson r of the two motion profiles) + (log ratio of their mean motions)^2, averaged
    over the batch: the first makes the loud (moving) frames of the real clip the frames that
    change most, the second matches the amount of motion.
    """
    moved, reference = frame_motion(fake), frame_motion(real)
    shape = 1.0 - pearson(moved, reference)
    scale = (moved.mean(dim=-1) + 1e-4).log() - (reference.mean(dim=-1) + 1e-4).log()
    return (shape + scale.square()).mean()
