"""Stage-1 DDP run for tests/test_inversion.py: 2 CPU processes (gloo), a few steps.

Run as a script (Lightning's DDP launcher re-executes it for rank 1), never imported by pytest:
    python tests/ddp_inversion_run.py SYNTH_ROOT SYNTH_CACHE GENERATOR ALIGN_CKPT OUT_DIR
Each rank writes OUT_DIR/rank<r>.pt with its encoder weights and global step.
"""

from __future__ import annotations

import sys
from pathlib import Path

import lightning as L
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fixtures.stages import (  # noqa: E402
    inversion_module,
    quiet_trainer,
    tiny_datamodule,
)


def main(synth_root: str, synth_cache: str, generator: str, align_ckpt: str, out: str) -> None:
    torch.set_num_threads(1)
    L.seed_everything(0, verbose=False)
    datamodule = tiny_datamodule(
        Path(synth_root), Path(synth_cache), batch_size=2, val_fraction=0.0, test_fraction=0.0
    )
    module = inversion_module(
        datamodule, generator, align_ckpt, windows_per_clip=1, frame_weight=1.0
    )
    trainer = quiet_trainer(
        Path(out), devices=2, strategy="ddp", max_steps=2, enable_checkpointing=False
    )
    trainer.fit(module, datamodule=datamodule)
    state = {k: v.clone() for k, v in module.encoder.state_dict().items()}
    payload = {"encoder": state, "global_step": trainer.global_step, "world": trainer.world_size}
    torch.save(payload, Path(out) / f"rank{trainer.global_rank}.pt")


if __name__ == "__main__":
    main(*sys.argv[1:6])
