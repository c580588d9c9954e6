"""Stage checkpoints: tagged with their stage, without the frozen pretrained networks.

Frozen networks (StyleGAN2, CLIP, an earlier stage's encoder) are rebuilt from the paths in
the hyper-parameters, so a checkpoint holds only what its stage trains: a stage-2 checkpoint
stays a few MB instead of carrying CLIP's 600 MB again.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from sgvideo.files import read_torch_file, require_file


class StageCheckpointMixin:
    """Mix into a LightningModule (before it in the bases) that sets `stage` and `frozen_modules`.

    `frozen_modules` names attributes whose parameters are dropped on save and restored from the
    freshly built module on load, so strict loading still checks every trained weight.
    """

    stage: str = ""
    frozen_modules: tuple[str, ...] = ()

    def _is_frozen_key(self, key: str) -> bool:
        return any(key == name or key.startswith(name + ".") for name in self.frozen_modules)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["sgvideo_stage"] = self.stage
        state = checkpoint["state_dict"]
        for key in [k for k in state if self._is_frozen_key(k)]:
            del state[key]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        check_stage(checkpoint, self.stage, source="checkpoint")
        state = checkpoint["state_dict"]
        for key, value in self.state_dict().items():
            if self._is_frozen_key(key):
                state[key] = value


def check_stage(checkpoint: dict[str, Any], stage: str, source: str) -> None:
    found = checkpoint.get("sgvideo_stage")
    if found != stage:
        what = f"a checkpoint of stage {found!r}" if found else "not an sgvideo stage checkpoint"
        raise ValueError(f"{source} is {what}, expected a {stage!r} checkpoint")


def read_stage_checkpoint(path: str | os.PathLike, stage: str) -> dict[str, Any]:
    """Load a Lightning checkpoint written by `stage` (its `hyper_parameters` and `state_dict`)."""
    path = require_file(path, f"{stage} checkpoint")
    checkpoint = read_torch_file(path, f"{stage} checkpoint")
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ValueError(f"{path} is not a Lightning checkpoint (no 'state_dict')")
    check_stage(checkpoint, stage, source=str(path))
    return checkpoint


def submodule_state(state_dict: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of `state_dict` under `prefix.`, with the prefix removed."""
    start = prefix + "."
    return {k[len(start) :]: v for k, v in state_dict.items() if k.startswith(start)}
