"""Pixel conventions, once for every stage, tool and metric.

Models see frames as floats in [-1, 1] ("... 3 h w"); files, videos and metrics as uint8
("... h w 3"). `to_unit_range` maps u -> u / 127.5 - 1; `to_uint8` maps back by round half up
of (x + 1) * 127.5, StyleGAN-V's quantisation, so uint8 frames survive the round trip unchanged.
"""

from __future__ import annotations

import numpy as np
import torch
from einops import rearrange

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats -> uint8 [0, 255], same layout, as StyleGAN-V quantises generated frames.

    (x * 127.5 + 128) truncated is round-half-up of (x + 1) * 127.5, so uint8 frames that were
    mapped to [-1, 1] by u / 127.5 - 1 come back unchanged. uint8 input is returned as is.
    """
    if x.dtype == torch.uint8:
        return x
    return (x * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def frames_to_uint8(frames: torch.Tensor) -> np.ndarray:
    """Frames "t 3 h w" in [-1, 1] -> "t h w 3" uint8 numpy (`to_uint8`), ready for a writer."""
    pixels = to_uint8(frames.detach())
    return np.ascontiguousarray(rearrange(pixels, "t c h w -> t h w c").cpu().numpy())


def to_unit_range(pixels: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 "... h w 3" (numpy or torch) -> float32 "... 3 h w" in [-1, 1]."""
    if isinstance(pixels, torch.Tensor):
        x = pixels.float()
    else:  # a copy: cached frames are read-only memory maps
        x = torch.from_numpy(np.array(pixels, dtype=np.float32))
    return rearrange(x / 127.5 - 1.0, "... h w c -> ... c h w")
