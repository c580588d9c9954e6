"""Stage 2's helpers apart from its model: the check that the stage-1 checkpoint it builds on
fits (same W+ shape as the generator, same audio settings as the data), and the restarted start
latents of training."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from sgvideo.audio import MelSettings
from sgvideo.models.inversion_encoder import SoundInversionEncoder
from sgvideo.models.stylegan2 import Generator


def check_inversion(
    encoder: SoundInversionEncoder,
    inversion_hparams: Mapping[str, Any],
    generator: Generator,
    hparams: Mapping[str, Any],
) -> None:
    """A stage-1 encoder made for another generator or other audio settings is refused.

    `hparams` are stage 2's (`inversion_path`, `generator_path` and `mel`)."""
    ours = (generator.n_latent, generator.style_dim)
    theirs = (encoder.n_latent, encoder.style_dim)
    if ours != theirs:
        raise ValueError(
            f"the inversion checkpoint {hparams['inversion_path']} predicts W+ latents of "
            f"{theirs[0]} x {theirs[1]} but the generator {hparams['generator_path']} takes "
            f"{ours[0]} x {ours[1]}: train stage 1 for this generator"
        )
    source = hparams["inversion_path"]
    mel = MelSettings.from_hparams(hparams).as_dict()
    trained = MelSettings.from_hparams(inversion_hparams, source).as_dict()
    trained["n_mels"] = encoder.n_mels
    mismatched = {key: (trained[key], mel[key]) for key in mel if trained[key] != mel[key]}
    if mismatched:
        details = ", ".join(f"{k}: {a} (stage 1) vs {b}" for k, (a, b) in mismatched.items())
        raise ValueError(
            f"the inversion checkpoint {source} was trained with other audio settings than "
            f"this stage's data: {details}"
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
