"""Audio encoder into CLIP's joint space: log-mel -> 3x3 conv (1 -> 3 channels) -> ResNet-18.

The module and parameter names (`conv.*`, `feature_extractor.*` with torchvision's ResNet
names, which timm's resnet18 shares) are those of the sound-CLIP audio encoder published with
Lee et al., "Sound-Guided Semantic Image Manipulation" (CVPR 2022), so its `resnet18.pth`
loads as is. That encoder was trained on log-mels at 44.1 kHz, n_fft 2048, hop 512, 128 mels,
`power_to_db(ref=max) / 80 + 1` (per-clip maximum as reference; our LogMel uses a fixed
full-scale reference) over ~5 s of sound.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models import resnet18

from sgvideo.checkpoints import check_stage, submodule_state
from sgvideo.files import read_torch_file, require_file


class AudioEncoder(nn.Module):
    """ "b n_mels time" log-mel -> "b embed_dim" (L2-normalised when `normalize`)."""

    def __init__(self, embed_dim: int = 512) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        # No padding, as in the authors' encoder: the same weights give the same features.
        self.conv = nn.Conv2d(1, 3, kernel_size=3)
        self.feature_extractor = resnet18(weights=None, num_classes=embed_dim)

    def forward(self, mel: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        if mel.dim() != 3:
            raise ValueError(f"mel must be 'b n_mels time', got {tuple(mel.shape)}")
        if min(mel.shape[-2:]) < 3:
            raise ValueError(f"mel needs at least 3 mel bins and 3 time steps, got {mel.shape}")
        embed = self.feature_extractor(self.conv(mel.unsqueeze(1)))
        return F.normalize(embed, dim=-1) if normalize else embed


def load_audio_encoder(path: str | os.PathLike, map_location: str = "cpu") -> AudioEncoder:
    """A frozen AudioEncoder (eval mode) from a stage-0 `align` checkpoint or a raw state dict.

    A raw state dict is the authors' `resnet18.pth` layout (`conv.*`, `feature_extractor.*`,
    optionally under DataParallel's `module.` prefix). The embedding size is read from the
    weights. Anything else is refused with the offending keys or shapes in the message.
    """
    path = require_file(
        path,
        "audio encoder weights",
        hint="Train stage 0 (`make train-align`) and pass its checkpoint, or pass the authors' "
        "sound-CLIP resnet18.pth",
    )
    raw = read_torch_file(path, "audio encoder checkpoint")
    if isinstance(raw, Mapping) and "state_dict" in raw:
        check_stage(raw, "align", source=str(path))
        state = submodule_state(raw["state_dict"], "audio_encoder")
    elif isinstance(raw, Mapping) and all(isinstance(v, torch.Tensor) for v in raw.values()):
        state = {k.removeprefix("module."): v for k, v in raw.items()}
    else:
        raise ValueError(f"{path} is neither an align checkpoint nor an audio encoder state dict")
    return _build(state, str(path)).to(map_location)


def _build(state: Mapping[str, torch.Tensor], source: str) -> AudioEncoder:
    fc = state.get("feature_extractor.fc.weight")
    if fc is None or fc.dim() != 2:
        raise ValueError(
            f"{source} holds no AudioEncoder weights (no 'feature_extractor.fc.weight'; "
            f"keys start with {sorted(state)[:3]})"
        )
    encoder = AudioEncoder(embed_dim=fc.shape[0])
    try:
        encoder.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ValueError(f"{source} does not match AudioEncoder (ResNet-18): {error}") from None
    return encoder.eval().requires_grad_(False)
