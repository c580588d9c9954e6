"""CLIP-stage DDP run for tests/test_clip_training.py: 2 CPU processes (gloo), 2 steps.

Run as a script (Lightning's DDP launcher re-executes it for rank 1), never imported by pytest:
    python tests/ddp_clip_run.py OUT_DIR
Each rank writes OUT_DIR/rank<r>.pt with its CLIP weights, global step and world size.
"""

from __future__ import annotations

import sys
from pathlib import Path

import lightning as L
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fixtures.stages import quiet_trainer  # noqa: E402
from tests.test_clip_training import colour_loader, tiny_module  # noqa: E402


def main(out: str) -> None:
    torch.set_num_threads(1)
    L.seed_everything(0, verbose=False)
    module = tiny_module(export_path=str(Path(out) / "clip.pt"))
    initial = {k: v.clone() for k, v in module.clip.state_dict().items()}
    trainer = quiet_trainer(
        Path(out), devices=2, strategy="ddp", max_steps=2, enable_checkpointing=False
    )
    trainer.fit(module, train_dataloaders=colour_loader())
    state = {k: v.clone() for k, v in module.clip.state_dict().items()}
    payload = {
        "clip": state,
        "initial": initial,
        "global_step": trainer.global_step,
        "world": trainer.world_size,
    }
    torch.save(payload, Path(out) / f"rank{trainer.global_rank}.pt")


if __name__ == "__main__":
    main(sys.argv[1])
