"""`sgvideo generate` speed and memory: frames/s, real-time factor, peak memory vs sound length.

Randomly initialised models of the demo sizes (CPU: 32 px StyleGAN2 with style_dim 64, the demo
inversion encoder and a causal 2-layer GRU of 32 per group stepped 15 times a second, reading
each step's log-mel) and, when a
GPU is lent, of the paper sizes (256 px, style_dim 512, 5-layer GRUs of 512). Output at 30 fps.
- frames/s and real-time factor (seconds of compute per second of sound; < 1 is faster than
  real time) of the latent path + synthesis alone ("frames"), and end to end to an mp4 with
  the sound ("mp4": adds x264/AAC encoding on the CPU);
- peak resident memory (ru_maxrss) of a fresh process generating a short and a long sound at
  the demo size: flat apart from the waveform itself (4 bytes a sample, held twice).
Run: `make bench ARGS="--only generate [--quick]"`.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from sgvideo.audio import MelSettings
from sgvideo.generate import render_video
from sgvideo.inference.pipeline import SoundToVideo
from sgvideo.inference.sound import SoundInverter
from sgvideo.models.inversion_encoder import SoundInversionEncoder
from sgvideo.models.stylegan2 import Generator
from sgvideo.models.trajectory import TrajectoryGenerator

FPS = 30.0
RATE = 44100
REPO = Path(__file__).resolve().parents[1]
DEMO = dict(
    size=32,
    generator=dict(style_dim=64, n_mlp=2, channel_multiplier=1, channel_max=64),
    audio=dict(n_mels=32, n_fft=512, hop_length=256),
    encoder=dict(channels=[16, 32, 64], blocks_per_stage=1),
    trajectory=dict(hidden=32, num_layers=2),
)
PAPER = dict(
    size=256,
    generator=dict(style_dim=512, n_mlp=8, channel_multiplier=2),
    audio=dict(n_mels=128, n_fft=2048, hop_length=512),
    encoder=dict(),
    trajectory=dict(hidden=512, num_layers=5),
)


def pipeline(spec: dict, device: str = "cpu", batch_size: int = 16) -> SoundToVideo:
    """Random models of `spec`'s sizes (15 trajectory steps a second, 1/3 s sound windows)."""
    torch.manual_seed(0)
    generator = Generator(spec["size"], **spec["generator"])
    encoder = SoundInversionEncoder(
        generator.n_latent, generator.style_dim, spec["audio"]["n_mels"], **spec["encoder"]
    )
    trajectory = TrajectoryGenerator(
        generator.n_latent,
        generator.style_dim,
        audio_dim=spec["audio"]["n_mels"],
        **spec["trajectory"],
    )
    mel = MelSettings(sample_rate=RATE, **spec["audio"])
    inverter = SoundInverter(encoder, generator.mean_latent(1024)[0], mel, window_seconds=2.0 / 6)
    return SoundToVideo(
        generator, inverter, trajectory, step_seconds=1 / 15, batch_size=batch_size, device=device
    )


def sound(seconds: float) -> torch.Tensor:
    return 0.3 * torch.randn(round(seconds * RATE), generator=torch.Generator().manual_seed(0))


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _speed(pipe: SoundToVideo, seconds: float, to_mp4: bool) -> dict:
    wave = sound(seconds)
    device = str(pipe.device)
    w0 = pipe.audio_latent(wave, FPS)
    for _ in pipe.frames(wave[: RATE // 2], FPS, w0):  # warm-up
        pass
    _sync(device)
    start = time.perf_counter()
    if to_mp4:
        with tempfile.TemporaryDirectory() as tmp:
            render_video(pipe, wave, Path(tmp) / "out.mp4", FPS, w0, progress=False)
    else:
        for chunk in pipe.frames(wave, FPS, w0):
            chunk.cpu()
    _sync(device)
    elapsed = time.perf_counter() - start
    frames = pipe.frame_count(wave.shape[-1], FPS)
    return {
        "frames_per_s": frames / elapsed,
        "real_time_factor": elapsed / seconds,
        "seconds": elapsed,
        "frames": frames,
    }


def _rows(
    label: str,
    spec: dict,
    device: str,
    seconds: float,
    batch_size: int = 16,
    precision: str = "fp32",
    **extra,
) -> list[dict]:
    rows = []
    for to_mp4 in (False, True):
        pipe = pipeline(spec, device, batch_size)
        pipe.generator.precision = precision
        measured = _speed(pipe, seconds, to_mp4)
        context = {
            "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
            "resolution": spec["size"],
            "fps": FPS,
            "audio_seconds": seconds,
            "frames": measured["frames"],
            "batch": pipe.batch_size,
            "threads": torch.get_num_threads(),
            "precision": precision,
            **extra,
        }
        what = "mp4" if to_mp4 else "frames"
        rows.append(
            {"name": f"generate {label} {what}", "value": measured["frames_per_s"],
             "unit": "frames/s", **context}
        )  # fmt: skip
        rows.append(
            {"name": f"generate {label} {what} real-time factor",
             "value": measured["real_time_factor"], "unit": "s compute / s audio", **context}
        )  # fmt: skip
    return rows


MEMORY_CHILD = """
import resource, sys, tempfile, torch
from pathlib import Path
from bench.bench_generate import DEMO, FPS, pipeline, sound
from sgvideo.generate import render_video
pipe = pipeline(DEMO)
seconds = float(sys.argv[1])
wave = sound(seconds)
w0 = pipe.audio_latent(wave, FPS)
with tempfile.TemporaryDirectory() as tmp:
    render_video(pipe, wave, Path(tmp) / "out.mp4", FPS, w0, progress=False)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def _peak_memory(seconds: float) -> int:
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, str(seconds)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(result.stdout.split()[-1])


def _memory_rows(lengths: tuple[float, float]) -> list[dict]:
    short, long = (_peak_memory(s) for s in lengths)
    context = {"resolution": DEMO["size"], "fps": FPS, "device": "cpu"}
    waveform = (lengths[1] - lengths[0]) * RATE * 4 / 2**20
    return [
        {"name": f"generate peak RSS, {lengths[0]:g} s sound", "value": short / 2**20,
         "unit": "MiB", **context},
        {"name": f"generate peak RSS, {lengths[1]:g} s sound", "value": long / 2**20,
         "unit": "MiB", **context},
        {"name": f"generate peak RSS growth {lengths[0]:g} s -> {lengths[1]:g} s",
         "value": (long - short) / 2**20, "unit": "MiB", **context,
         "waveform_growth_mib": waveform},
    ]  # fmt: skip


def run(quick: bool, devices: Sequence[str] = ("cpu",)) -> list[dict]:
    rows = []
    if "cpu" in devices:
        rows += _rows("demo 32 px (cpu)", DEMO, "cpu", 4.0 if quick else 10.0)
        rows += _memory_rows((5.0, 30.0) if quick else (10.0, 120.0))
    if "cuda" in devices:
        for precision in ("fp32", "bf16"):
            rows += _rows(
                f"256 px {precision} (cuda)", PAPER, "cuda", 10.0, precision=precision,
                batch_size=32, goal="10 s at 30 fps in <= 1 s (real-time factor <= 0.1)",
            )  # fmt: skip
    return rows


if __name__ == "__main__":
    for row in run(quick=True):
        print(row)
