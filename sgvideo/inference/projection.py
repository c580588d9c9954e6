"""Projection: a real image -> StyleGAN2's W+ by optimisation."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from einops import repeat
from torch import Tensor
from torch.nn import functional as F
from tqdm import tqdm

from sgvideo.models.clip_model import clip_image_embed
from sgvideo.models.stylegan2 import Generator


@dataclass
class Optimized:
    """An optimised W+ latent "n s" and its loss after each step."""

    w: Tensor
    losses: list[float] = field(default_factory=list)


def project_image(
    generator: Generator,
    image: Tensor,
    steps: int = 200,
    lr: float = 0.05,
    clip: torch.nn.Module | None = None,
    clip_weight: float = 1.0,
    w_init: Tensor | None = None,
    noise_mode: str = "const",
    progress: bool = True,
) -> Optimized:
    """Invert an image "3 h w" in [-1, 1] (the generator's size) into W+ by Adam.

    Starts at w_avg on every layer (or `w_init` "n s"); loss = mean square pixel error, plus
    `clip_weight` * (1 - cos) between CLIP image embeddings of G(w) and the image when `clip`
    is given.
    """
    size = generator.size
    if image.dim() != 3 or tuple(image.shape) != (3, size, size):
        raise ValueError(
            f"image must be '3 {size} {size}' for this generator, got {tuple(image.shape)}"
        )
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    target = image[None].to(generator.w_avg.device)
    start = (
        w_init if w_init is not None else repeat(generator.w_avg, "s -> n s", n=generator.n_latent)
    )
    w = start.detach().clone().to(target.device).requires_grad_(True)
    target_embed = None
    if clip is not None:
        with torch.no_grad():
            target_embed = clip_image_embed(clip, target)
    optimizer = torch.optim.Adam([w], lr=lr)
    losses = []
    with torch.enable_grad():
        for _ in tqdm(range(steps), desc="project", unit="step", disable=not progress):
            fake = generator.synthesis(w[None], noise_mode)
            loss = F.mse_loss(fake, target)
            if target_embed is not None:
                cos = (clip_image_embed(clip, fake) * target_embed).sum(dim=-1)
                loss = loss + clip_weight * (1.0 - cos).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return Optimized(w.detach(), losses)
