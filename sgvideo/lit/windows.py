"""Per-window training samples from a clip batch: each audio window with its video frame.

Stages 0 and 1 learn from single windows: window t of a clip is paired with frame t and the
clip's category. A batch of b clips x t windows becomes up to b*t samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange, repeat


@dataclass
class Windows:
    """n samples: audio "n samples", frames "n 3 h w", category "n", clip "n" (batch index)."""

    audio: torch.Tensor
    frames: torch.Tensor
    category: torch.Tensor
    clip: torch.Tensor


def flatten_windows(
    batch: dict, windows_per_clip: int | None = None, window_samples: int | None = None
) -> Windows:
    """All windows of every clip ("b t ..." -> "(b t) ..."), or `windows_per_clip` random ones.

    The random choice (different windows per clip, without repetition) uses the global torch
    RNG, so it follows the run's seed. `window_samples`, when given, is the window length the
    model was configured for (from its window_seconds and sample_rate); the data must match.
    """
    audio, frames = batch["audio"], batch["frames"]
    if audio.dim() != 3 or frames.dim() != 5 or audio.shape[:2] != frames.shape[:2]:
        raise ValueError(
            f"batch must hold audio 'b t samples' and frames 'b t 3 h w' with the same b t, "
            f"got {tuple(audio.shape)} and {tuple(frames.shape)}"
        )
    if window_samples is not None and audio.shape[-1] != window_samples:
        raise ValueError(
            f"audio windows have {audio.shape[-1]} samples but the model expects "
            f"{window_samples} (its window_seconds x sample_rate): model and data settings disagree"
        )
    b, t = audio.shape[:2]
    category = repeat(batch["category"], "b -> b t", t=t)
    clip = repeat(torch.arange(b, device=audio.device), "b -> b t", t=t)
    if windows_per_clip is not None and windows_per_clip < t:
        if windows_per_clip < 1:
            raise ValueError(f"windows_per_clip must be at least 1, got {windows_per_clip}")
        pick = torch.rand(b, t).argsort(dim=1)[:, :windows_per_clip].to(audio.device)
        audio = audio.gather(1, repeat(pick, "b k -> b k s", s=audio.shape[-1]))
        frames = frames[torch.arange(b, device=audio.device)[:, None], pick]
        category, clip = category.gather(1, pick), clip.gather(1, pick)
    return Windows(
        audio=rearrange(audio, "b t s -> (b t) s"),
        frames=rearrange(frames, "b t c h w -> (b t) c h w"),
        category=rearrange(category, "b t -> (b t)"),
        clip=rearrange(clip, "b t -> (b t)"),
    )
