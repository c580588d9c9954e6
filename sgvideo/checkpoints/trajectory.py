"""Stage-2 checkpoints: the trained trajectory net and what generation needs to run it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from sgvideo.checkpoints.stage import read_stage_checkpoint, submodule_state
from sgvideo.models.trajectory import TrajectoryGenerator

# The TrajectoryGenerator's constructor arguments, saved beside its weights.
TRAJECTORY_CONFIG_KEY = "sgvideo_trajectory_config"


def load_trajectory_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[TrajectoryGenerator, dict[str, Any]]:
    """The trained trajectory net (eval mode) of a stage-2 checkpoint and its hparams.

    The hparams hold what generation needs: the frozen parts' paths (`generator_path`,
    `inversion_path`, ...), the audio settings (`mel`, read by `MelSettings.from_hparams`;
    `window_seconds` = one trajectory step, `sound_window_seconds` = stage 1's window),
    `init` and `categories`; with text init also `start_latents`: category name -> its start
    latent "n_latent style_dim".
    """
    checkpoint = read_stage_checkpoint(path, "trajectory")
    config = checkpoint.get(TRAJECTORY_CONFIG_KEY)
    if not isinstance(config, dict):
        raise ValueError(f"{path} has no trajectory configuration ('{TRAJECTORY_CONFIG_KEY}')")
    if "bidirectional" in config:
        raise ValueError(
            f"{path} holds a trajectory net of an earlier sgvideo (a bidirectional GRU that "
            "never saw the previous latent); the causal net replaced it: train stage 2 again"
        )
    net = TrajectoryGenerator(**config)
    state = checkpoint["state_dict"]
    try:
        net.load_state_dict(submodule_state(state, "trajectory"))
    except RuntimeError as error:
        raise ValueError(f"{path}: trajectory weights do not match {config}: {error}") from None
    hparams = dict(checkpoint.get("hyper_parameters", {}))
    if "start_latents" in state:
        hparams["start_latents"] = dict(
            zip(hparams["categories"], state["start_latents"].unbind(0), strict=True)
        )
    return net.eval().to(map_location), hparams
