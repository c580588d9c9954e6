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


def test_stage_2_checkpoint_round_trip_and_old_or_broken_nets_are_clear_errors(tmp_path) -> None:
    from sgvideo.checkpoints.trajectory import TRAJECTORY_CONFIG_KEY, load_trajectory_checkpoint
    from sgvideo.models.trajectory import TrajectoryGenerator

    net = TrajectoryGenerator(6, 8, hidden=4, num_layers=1, audio_dim=3)
    state = {f"trajectory.{k}": v for k, v in net.state_dict().items()}
    saved = {"state_dict": state, "sgvideo_stage": "trajectory", "hyper_parameters": {"x": 1}}
    path = tmp_path / "stage2.ckpt"
    torch.save(saved | {TRAJECTORY_CONFIG_KEY: net.config}, path)
    loaded, hparams = load_trajectory_checkpoint(path)
    assert hparams == {"x": 1} and not loaded.training
    w0, sound, audio = torch.randn(2, 6, 8), torch.randn(2, 3, 6, 8), torch.randn(2, 3, 3)
    torch.testing.assert_close(loaded(w0, sound, audio), net(w0, sound, audio))

    old = dict(net.config, bidirectional=True)
    torch.save(saved | {TRAJECTORY_CONFIG_KEY: old}, path)
    with pytest.raises(ValueError, match="earlier sgvideo .* train stage 2 again"):
        load_trajectory_checkpoint(path)
    torch.save(saved | {TRAJECTORY_CONFIG_KEY: dict(net.config, hidden=5)}, path)
    with pytest.raises(ValueError, match="trajectory weights do not match"):
        load_trajectory_checkpoint(path)
    torch.save(saved, path)
    with pytest.raises(ValueError, match="has no trajectory configuration"):
        load_trajectory_checkpoint(path)
