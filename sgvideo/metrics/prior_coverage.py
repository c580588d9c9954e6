"""Prior coverage: does the StyleGAN2 prior draw every scene, each one recognisably?

Of `samples` random images of the prior (z ~ N(0, I) from its own seeded `torch.Generator`,
w = mapping(z) on every W+ layer, no truncation, constant noise), the share the frame judge
labels confidently (its top softmax probability >= `threshold`), overall and per category.
Issue 15's goal for the prior: >= 95% of 500 samples confident at 0.8, no category missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from einops import repeat
from torch import Tensor, nn

SAMPLES = 500
THRESHOLD = 0.8


def prior_coverage(
    generator: nn.Module,
    judge: nn.Module,
    categories: Sequence[str],
    samples: int = SAMPLES,
    threshold: float = THRESHOLD,
    seed: int = 0,
    batch_size: int = 16,
) -> dict[str, Any]:
    """How confidently and how evenly `judge` (frames "b 3 h w" in [-1, 1] -> logits "b k",
    k = len(categories)) labels `samples` random images of `generator` (a StyleGAN2
    `Generator`: `mapping`, `synthesis`, `style_dim`, `n_latent`).

    Returns {"confident": share of samples whose top probability >= threshold,
    "per_category": {category: share of samples confidently that category} (every category,
    0.0 when none), "missing": the categories with no confident sample, "samples",
    "threshold"}. The z are drawn on the CPU from their own seeded RNG (the same on every
    device; torch's global RNG is neither read nor advanced) and rendered `batch_size` at a
    time (the result does not depend on it).

    Example: `prior_coverage(model.generator, judge, judge.categories)["missing"]`.
    """
    if samples < 1:
        raise ValueError(f"prior coverage needs at least 1 sample, got {samples}")
    z = torch.randn(samples, generator.style_dim, generator=torch.Generator().manual_seed(seed))
    probabilities = torch.cat(
        [_probabilities(generator, judge, part) for part in z.split(batch_size)]
    )
    top, label = probabilities.max(dim=1)
    confident = top >= threshold
    counts = torch.bincount(label[confident], minlength=len(categories)).tolist()
    per_category = {name: count / samples for name, count in zip(categories, counts, strict=True)}
    return {
        "confident": int(confident.sum()) / samples,
        "per_category": per_category,
        "missing": [name for name, share in per_category.items() if share == 0],
        "samples": samples,
        "threshold": threshold,
    }


def protocol(coverage: dict[str, Any], seed: int, size: int) -> str:
    """How `prior_coverage` drew and judged the images of `coverage`, for the report."""
    return (
        f"{coverage['samples']} samples, z ~ N(0, I) from torch.Generator seed {seed}; w = "
        f"mapping(z) on every W+ layer (no truncation), constant noise; the {size} px images "
        "judged as synthesised (no uint8 rounding, no resize); confident: the frame judge's top "
        f"softmax probability >= {coverage['threshold']:g}"
    )


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


@torch.no_grad()
def _probabilities(generator: nn.Module, judge: nn.Module, z: Tensor) -> Tensor:
    """z "b style_dim" -> the judge's category probabilities "b k" (CPU) of the prior's images."""
    w = generator.mapping(z.to(_device(generator)))
    images = generator.synthesis(repeat(w, "b d -> b n d", n=generator.n_latent), "const")
    return judge(images.to(_device(judge))).softmax(dim=1).cpu()
