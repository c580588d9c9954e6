"""Checkpoint I/O below the models and the training modules.

`sgvideo.checkpoints` (this module) reads sgvideo's stage checkpoints; it imports no network.
`sgvideo.checkpoints.stylegan2` reads and writes StyleGAN2 checkpoints in rosinality's format
and builds the networks of `sgvideo.models.stylegan2` (the architecture alone) from them.
"""

from sgvideo.checkpoints.stage import check_stage, read_stage_checkpoint, submodule_state

__all__ = ["check_stage", "read_stage_checkpoint", "submodule_state"]
