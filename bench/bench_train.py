"""Stage-2 training speed: steps/s of `TrajectoryGAN` on CPU (demo sizes) and CUDA (paper sizes).

Randomly initialised stand-ins of the frozen networks are written to a temporary folder in
the formats the stage loads (rosinality .pt, a stage-1 checkpoint, an audio-encoder state
dict, a CLIP state dict), and the trainer runs on in-memory random clips, so this measures
the model step (synthesis, CLIP, discriminators, both optimisers), not data loading.

- CPU: the demo sizes (32 px tiny generator, tiny CLIP, hidden 32, 6 frames, batch 4).
- CUDA (skipped without a GPU): 256 px StyleGAN2, ViT-B/32-sized CLIP, hidden 512 x 5 layers,
  6 frames at batch 4 in bf16-mixed, with and without `checkpoint_synthesis`, with the
  peak GPU memory of each.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader, Dataset

from sgvideo.audio import MelSettings
from sgvideo.checkpoints.stylegan2 import save_rosinality_checkpoint
from sgvideo.lit.trajectory import TrajectoryGAN
from sgvideo.models.audio_encoder import AudioEncoder
from sgvideo.models.inversion_encoder import ENCODER_CONFIG_KEY, SoundInversionEncoder
from sgvideo.models.stylegan2 import Generator

FRAMES, CLIP_SECONDS = 6, 2.0
DEMO = dict(
    size=32,
    generator=dict(style_dim=32, n_mlp=2, channel_multiplier=1, channel_max=32),
    audio=dict(sample_rate=44100, n_mels=32, n_fft=512, hop_length=256),
    encoder=dict(channels=[8, 16, 32], blocks_per_stage=1),
    model=dict(hidden=32, num_layers=2, image_d_channels=16, video_d_channels=8),
    clip="tiny",
    embed_dim=32,
    batch=4,
)
PAPER = dict(
    size=256,
    generator=dict(style_dim=512, n_mlp=8, channel_multiplier=2),
    audio=dict(sample_rate=44100, n_mels=128, n_fft=2048, hop_length=512),
    encoder=dict(),
    model=dict(hidden=512, num_layers=5),
    clip="vit-b-32",
    embed_dim=512,
    batch=4,
)


class RandomClips(Dataset):
    def __init__(self, n: int, size: int, window: int) -> None:
        self.n, self.size, self.window = n, size, window

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict:
        audio = 0.3 * torch.randn(FRAMES, self.window)
        return {
            "frames": torch.rand(FRAMES, 3, self.size, self.size) * 2 - 1,
            "audio": audio,
            "waveform": audio.flatten(),
            "category": torch.tensor(index % 2),
        }


class StepTimer(Callback):
    """Wall time of each training batch after `warmup` batches (CUDA synchronised)."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.times = warmup, []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        if batch_idx >= self.warmup - 1:
            self.times.append(time.perf_counter())


def _vit_b_32_state(path: Path) -> None:
    from clip.model import CLIP

    model = CLIP(512, 224, 12, 768, 32, 77, 49408, 512, 8, 12)
    torch.save(model.half().state_dict(), path)


def _write_frozen_parts(folder: Path, spec: dict) -> dict[str, str]:
    """Random stand-ins of the frozen networks, in the formats TrajectoryGAN loads."""
    generator = Generator(spec["size"], **spec["generator"])
    save_rosinality_checkpoint(folder / "generator.pt", g_ema=generator)
    encoder = SoundInversionEncoder(
        generator.n_latent, generator.style_dim, spec["audio"]["n_mels"], **spec["encoder"]
    )
    torch.save(
        {
            "sgvideo_stage": "inversion",
            "state_dict": {f"encoder.{k}": v for k, v in encoder.state_dict().items()},
            ENCODER_CONFIG_KEY: encoder.config,
            "hyper_parameters": {"mel": dict(spec["audio"])},
        },
        folder / "inversion.ckpt",
    )
    torch.save(AudioEncoder(spec["embed_dim"]).state_dict(), folder / "audio_encoder.pt")
    clip = spec["clip"]
    if clip != "tiny":
        clip = str(folder / "clip.pt")
        _vit_b_32_state(Path(clip))
    return {
        "generator_path": str(folder / "generator.pt"),
        "inversion_path": str(folder / "inversion.ckpt"),
        "audio_encoder_path": str(folder / "audio_encoder.pt"),
        "clip": clip,
    }


def _measure(spec: dict, device: str, steps: int, **model_options) -> dict:
    warmup = 2
    with tempfile.TemporaryDirectory() as tmp:
        L.seed_everything(0, verbose=False)
        model = TrajectoryGAN(
            **_write_frozen_parts(Path(tmp), spec),
            mel=MelSettings(**spec["audio"]),
            **spec["model"],
            window_seconds=CLIP_SECONDS / FRAMES,
            num_frames=FRAMES,
            sample_every_n_steps=0,
            **model_options,
        )
        window = round(spec["audio"]["sample_rate"] * CLIP_SECONDS / FRAMES)
        data = RandomClips(spec["batch"] * (steps + warmup), spec["size"], window)
        timer = StepTimer(warmup)
        precision = "bf16-mixed" if device == "cuda" else "32-true"
        trainer = L.Trainer(
            accelerator=device,
            devices=1,
            precision=precision,
            max_steps=steps + warmup,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_val_batches=0,
            callbacks=[timer],
            default_root_dir=tmp,
        )
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        trainer.fit(model, DataLoader(data, batch_size=spec["batch"]))
    seconds = timer.times[-1] - timer.times[0]
    row = {
        "value": (len(timer.times) - 1) / seconds,
        "unit": "steps/s",
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "batch": spec["batch"],
        "frames": FRAMES,
        "resolution": spec["size"],
        "precision": precision,
        "hidden": spec["model"]["hidden"],
        "num_layers": spec["model"]["num_layers"],
        "threads": torch.get_num_threads(),
    }
    if device == "cuda":
        row["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return row


def run(quick: bool, devices: Sequence[str] = ("cpu",)) -> list[dict]:
    steps = 3 if quick else 10
    rows = []
    if "cpu" in devices:
        rows.append({"name": "stage2 train step, demo sizes (cpu)", **_measure(DEMO, "cpu", steps)})
    if "cuda" in devices:
        for checkpointed in (False, True):
            name = "stage2 train step, 256 px paper sizes" + (
                " + checkpoint_synthesis" if checkpointed else ""
            )
            row = _measure(PAPER, "cuda", steps, checkpoint_synthesis=checkpointed)
            rows.append({"name": name, **row, "checkpoint_synthesis": checkpointed})
    return rows


if __name__ == "__main__":
    for row in run(quick=True):
        print(row)
