"""Pixel conventions shared by the metrics."""

from __future__ import annotations

import torch


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats -> uint8 [0, 255] as StyleGAN-V quantises generated frames.

    (x * 127.5 + 128) truncated is round-half-up of (x + 1) * 127.5, so uint8 frames that were
    mapped to [-1, 1] by u / 127.5 - 1 come back unchanged. uint8 input is returned as is.
    """
    if x.dtype == torch.uint8:
        return x
    return (x * 127.5 + 128).clamp(0, 255).to(torch.uint8)
