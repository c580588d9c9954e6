"""Stage 2's helpers apart from its model: the check that the stage-1 checkpoint it builds on
fits (same W+ shape as the generator, same audio settings as the data), and the restarted start
latents of training."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from sgvideo.models.inversion_encoder import SoundInversionEncoder
from sgvideo.models.stylegan2 import Generator

# Audio settings the inversion encoder was trained with and stage 2 must share.
MEL_SETTINGS = ("sample_rate", "n_mels", "n_fft", "hop_length")


def check_inversion(
    encoder: SoundInversionEncoder,
    inversion_hparams: Mapping[str, Any],
    generator: Generator,
    hparams: Mapping[str, Any],
) -> None:
    """A stage-1 encoder made for another generator or other audio settings is refused.

    `hparams` are stage 2's (`inversion_path`, `generator_path` and the mel settings)."""
    ours = (generator.n_latent, generator.style_dim)
    theirs = (encoder.n_latent, encoder.style_dim)
    if ours != theirs:
        raise ValueError(
            f"the inversion checkpoint {hparams['inversion_path']} predicts W+ latents of "
            f"{theirs[0]} x {theirs[1]} but the generator {hparams['generator_path']} takes "
            f"{ours[0]} x {ours[1]}: train stage 1 for this generator"
        )
    mismatched = {
        key: (inversion_hparams[key], hparams[key])
        for key in MEL_SETTINGS
        if key in inversion_hparams and inversion_hparams[key] != hparams[key]
    }
    if mismatched or encoder.n_mels != hparams["n_mels"]:
        mismatched.setdefault("n_mels", (encoder.n_mels, hparams["n_mels"]))
        details = ", ".join(f"{k}: {a} (stage 1) vs {b}" for k, (a, b) in mismatched.items())
        raise ValueError(
            f"the inversion checkpoint {hparams['inversion_path']} was trained with other audio "
            f"settings than this stage's data: {details}"
        )


def restarted(w0: Tensor, prob: float) -> Tensor:
    """Start latents "b n s" where each row, with probability `prob`, is replaced by another
    row's (a random derangement of the batch; unchanged for a batch of one)."""
    b = w0.shape[0]
    if b < 2:
        return w0
    other = (torch.arange(b) + torch.randint(1, b, (b,))) % b
    pick = (torch.rand(b) < prob).to(w0.device)[:, None, None]
    return torch.where(pick, w0[other.to(w0.device)], w0)
