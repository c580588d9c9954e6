"""W+ latents at inference: seeded and CLIP-chosen starts, rendering, group-restricted moves,
latent files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from einops import repeat
from torch import Tensor

from sgvideo.files import atomic_path, read_torch_file, require_file
from sgvideo.inference.media import check_output_path
from sgvideo.models.clip_model import clip_image_embed, clip_text_embed
from sgvideo.models.latents import parse_groups, style_groups
from sgvideo.models.stylegan2 import Generator


@torch.no_grad()
def seed_latent(generator: Generator, seed: int, truncation: float = 0.7) -> Tensor:
    """A random W+ latent "n s": mapping(z ~ N(0, I) seeded), truncated toward w_avg."""
    z = torch.randn(1, generator.style_dim, generator=torch.Generator().manual_seed(seed))
    w = generator.truncate(generator.mapping(z.to(generator.w_avg.device)), truncation)
    return repeat(w[0], "s -> n s", n=generator.n_latent)


LATENT_KEY = "w_plus"


TEXT_CHUNK = 16


def save_latent(path: str | os.PathLike, w: Tensor, **info: Any) -> Path:
    """Write a W+ latent "n_latent style_dim" (and strings/numbers in `info`) atomically."""
    path = check_output_path(path, (".pt",), "latent file")
    with atomic_path(path) as tmp:
        torch.save({LATENT_KEY: w.detach().cpu().float(), **info}, tmp)
    return path


def load_latent(path: str | os.PathLike, generator: Generator) -> Tensor:
    """A latent written by `sgvideo project` (or `save_latent`), checked against `generator`."""
    path = require_file(path, "latent file", hint="write one with `sgvideo project`")
    data = read_torch_file(path, "latent file")
    w = data.get(LATENT_KEY) if isinstance(data, dict) else None
    expected = (generator.n_latent, generator.style_dim)
    if not isinstance(w, Tensor) or tuple(w.shape) != expected:
        found = tuple(w.shape) if isinstance(w, Tensor) else "no latent"
        raise ValueError(
            f"{path}: expected a '{LATENT_KEY}' W+ latent of shape {expected}, found {found}"
        )
    return w


def render(generator: Generator, w: Tensor, noise_mode: str = "const") -> Tensor:
    """W+ latents "... n s" -> images "... 3 h w" (no gradient)."""
    with torch.no_grad():
        flat = generator.synthesis(w.reshape(-1, *w.shape[-2:]), noise_mode)
    return flat.reshape(*w.shape[:-2], *flat.shape[1:])


def group_mask(
    n_latent: int, groups: str | Sequence[str], device: torch.device | None = None
) -> Tensor:
    """ "n 1" bool: True on the W+ layers of the chosen style groups."""
    mask = torch.zeros(n_latent, 1, dtype=torch.bool, device=device)
    layers = style_groups(n_latent)
    for name in parse_groups(groups):
        mask[layers[name]] = True
    return mask


def apply_direction(
    w: Tensor, direction: Tensor, groups: str | Sequence[str], strength: float
) -> Tensor:
    """w + strength * direction on the chosen groups' layers of "... n s"; the rest untouched."""
    mask = group_mask(w.shape[-2], groups, w.device)
    return torch.where(mask, w + strength * direction, w)


@torch.no_grad()
def clip_chosen_latents(
    generator: Generator,
    clip: torch.nn.Module,
    prompts: Sequence[str],
    samples: int = 128,
    truncation: float = 0.7,
    seed: int = 0,
    chunk: int = TEXT_CHUNK,
) -> Tensor:
    """The authors' CLIP choice of a latent per prompt: among `samples` seeded random latents
    truncated toward w_avg (one pool for every prompt), the one whose image is nearest the
    prompt in CLIP space: "c n s" for c prompts."""
    g = generator
    z = torch.randn(samples, g.style_dim, generator=torch.Generator().manual_seed(seed))
    w = g.truncate(g.mapping(z.to(g.w_avg.device)), truncation)
    embeds = torch.cat(
        [
            clip_image_embed(clip, g.synthesis(repeat(c, "b s -> b n s", n=g.n_latent)))
            for c in w.split(chunk)
        ]
    )
    best = (clip_text_embed(clip, list(prompts)) @ embeds.T).argmax(dim=1)
    return repeat(w[best], "c s -> c n s", n=g.n_latent)
