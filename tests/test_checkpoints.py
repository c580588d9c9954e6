"""Stage checkpoints: the stage tag check, older stage names included."""

from __future__ import annotations

import pytest
import torch

from sgvideo.checkpoints import read_stage_checkpoint
from sgvideo.checkpoints.stage import check_stage


def test_stage_2_checkpoints_load_under_either_name(tmp_path) -> None:
    """Stage 2 was tagged "generator" before it was "trajectory": each loads as the other."""
    for tag, expected in (("generator", "trajectory"), ("trajectory", "generator")):
        path = tmp_path / f"{tag}.ckpt"
        torch.save({"state_dict": {}, "sgvideo_stage": tag}, path)
        assert read_stage_checkpoint(path, expected)["sgvideo_stage"] == tag
    with pytest.raises(ValueError, match="stage 'generator', expected a 'inversion' checkpoint"):
        check_stage({"sgvideo_stage": "generator"}, "inversion", "x.ckpt")
    with pytest.raises(ValueError, match="x.ckpt is not an sgvideo stage checkpoint"):
        check_stage({}, "trajectory", "x.ckpt")
