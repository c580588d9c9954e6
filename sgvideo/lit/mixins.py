"""LightningModule mixins for stages with frozen pretrained networks and random augmentation.

Put them before StageCheckpointMixin in the bases: their checkpoint hooks call super().
"""

from __future__ import annotations

import random
from typing import Any

import torch
from torch import nn

RNG_KEY = "sgvideo_rng"


class FrozenEvalMixin:
    """Keeps the `frozen_modules` in eval mode whatever mode Lightning sets on the module.

    Lightning calls `train()` on the whole LightningModule at every epoch; a frozen network
    with batch norm (the stage-0 audio encoder) must not switch to batch statistics then.
    """

    frozen_modules: tuple[str, ...] = ()

    def train(self, mode: bool = True):
        super().train(mode)
        for name in self.frozen_modules:
            module = getattr(self, name, None)
            if isinstance(module, nn.Module):
                module.eval()
        return self


class RngStateMixin:
    """Saves the CPU (and CUDA) torch and Python RNG states in checkpoints and restores them.

    Lightning restores weights, optimizers, schedulers and loop counters but not the random
    generators, so augmentation and the data order would differ after `--ckpt_path last`.
    A run resumed from a checkpoint saved at an epoch boundary continues exactly as the
    uninterrupted run (on one device; all ranks take rank 0's states under DDP).
    """

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        checkpoint[RNG_KEY] = state

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        state = checkpoint.get(RNG_KEY)
        if state is None or getattr(self, "_trainer", None) is None:
            return  # only a Trainer resuming the run restores them, not load_from_checkpoint
        torch.set_rng_state(state["torch"])
        random.setstate(_as_tuple(state["python"]))
        cuda = state.get("cuda")
        if (
            cuda is not None
            and torch.cuda.is_available()
            and len(cuda) == torch.cuda.device_count()
        ):
            torch.cuda.set_rng_state_all(cuda)


def _as_tuple(value: Any) -> Any:
    """random.setstate wants tuples; a checkpoint round trip may turn them into lists."""
    return tuple(_as_tuple(v) for v in value) if isinstance(value, list | tuple) else value
