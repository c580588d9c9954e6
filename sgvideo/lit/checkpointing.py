"""Stage checkpoints: tagged with their stage, without the frozen pretrained networks.

Frozen networks (StyleGAN2, CLIP, an earlier stage's encoder) are rebuilt from the paths in
the hyper-parameters, so a checkpoint holds only what its stage trains: a stage-2 checkpoint
stays a few MB instead of carrying CLIP's 600 MB again.
"""

from __future__ import annotations

from typing import Any

from sgvideo.checkpoints import check_stage


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
