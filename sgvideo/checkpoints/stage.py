"""Stage checkpoints: Lightning checkpoints tagged with the sgvideo stage that wrote them.

Read by the training modules (`sgvideo.lit.checkpointing` writes the tag) and by the plain
networks' loaders, so this module knows nothing of Lightning.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from sgvideo.files import read_torch_file, require_file

# stage tags that name the same stage (stage 2 was tagged "generator" before it was "trajectory")
SAME_STAGE: dict[str, str] = {"generator": "trajectory"}


def check_stage(checkpoint: dict[str, Any], stage: str, source: str) -> None:
    """Raise ValueError unless `checkpoint` was written by `stage` (or by an older name of it)."""
    found = checkpoint.get("sgvideo_stage")
    if SAME_STAGE.get(found, found) != SAME_STAGE.get(stage, stage):
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
