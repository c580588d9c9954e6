"""Synthetic audio-visual landscape clips whose picture follows their sound.

Each clip is a small procedural scene (sky above a horizon, ground below, a colour palette per
category) with a procedural sound. The sound is made first; every frame is then painted from the
loudness of the audio window of that frame (`sgvideo.audio.segment_for_frames`, one frame long),
so what is seen follows what is heard frame by frame:

- rain: grey sky, falling streaks; hiss whose loudness sets how many streaks fall.
- fire: night, an orange glow; crackle impulses and the glow flares with them.
- thunder: dark storm sky; low booms and a sky flash (with a bolt) on the frames of the booms.
  Flash brightness grows with the boom's loudness, so the brightest frame is the loudest boom.
- water: blue sea with moving waves; a low rumble that swells with the wave highlights.
- wind: drifting clouds over grass; filtered noise whose loudness is the clouds' speed.

Clips are written as mp4 (h264 + AAC) under `out/<category>/<category>_<index>.mp4`. Every clip
has its own random stream seeded by (seed, category, index): the same seed gives the same clips,
whatever categories or counts are asked for.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from sgvideo.audio import segment_for_frames
from sgvideo.errors import reports_user_errors
from sgvideo.tool_cli import parse_function_args
from sgvideo.video_io import write_video

Palette = dict[str, tuple[float, float, float]]


# ---------------------------------------------------------------- sound building blocks


def _band_noise(rng: np.random.Generator, n: int, rate: int, low: float, high: float) -> np.ndarray:
    """White noise band-limited to [low, high] Hz (FFT mask), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    spectrum *= (freqs >= low) & (freqs <= high)
    noise = np.fft.irfft(spectrum, n)
    return noise / (noise.std() + 1e-12)


def _smooth_random(
    rng: np.random.Generator, n: int, knots: int, low: float, high: float
) -> np.ndarray:
    """A smooth random curve of `n` points in [low, high] (cosine interpolation of knots)."""
    values = rng.uniform(low, high, knots + 1)
    pos = np.linspace(0, knots, n, endpoint=False)
    i = pos.astype(int)
    blend = (1 - np.cos(np.pi * (pos - i))) / 2
    return values[i] * (1 - blend) + values[i + 1] * blend


def _events(
    n: int, positions: np.ndarray, amplitudes: np.ndarray, kernel: np.ndarray
) -> np.ndarray:
    """Sum of `kernel` copies started at sample `positions`, scaled by `amplitudes` (FFT conv)."""
    train = np.zeros(n)
    np.add.at(train, positions, amplitudes)
    size = n + len(kernel)
    return np.fft.irfft(np.fft.rfft(train, size) * np.fft.rfft(kernel, size), size)[:n]


def _decay(
    rng: np.random.Generator, rate: int, seconds: float, tau: float, low: float, high: float
) -> np.ndarray:
    """A burst of band noise with a 2 ms attack and an exponential decay of time constant tau."""
    t = np.arange(round(seconds * rate)) / rate
    envelope = np.minimum(t / 0.002, 1.0) * np.exp(-t / tau)
    return _band_noise(rng, len(t), rate, low, high) * envelope


# Sounds: (rng, samples, sample rate, fps) -> "samples" float64, any scale (normalised later).


def _sound_rain(rng, n, rate, fps):
    hiss = _band_noise(rng, n, rate, 2000, 12000)
    count = max(1, n * 40 // rate)  # 40 drops a second
    drops = _events(
        n,
        rng.integers(0, n, size=count),
        rng.uniform(0.5, 2.0, size=count),
        _decay(rng, rate, 0.02, 0.003, 1000, 8000),
    )
    return (hiss + drops) * _smooth_random(rng, n, 3, 0.15, 1.0)


def _sound_fire(rng, n, rate, fps):
    roar = 0.15 * _band_noise(rng, n, rate, 40, 400) * _smooth_random(rng, n, 4, 0.6, 1.0)
    count = max(2, round(n / rate * 10))
    crackles = _events(
        n,
        rng.integers(0, n, size=count),
        rng.uniform(0.2, 1.0, size=count) ** 2 * 6,
        _decay(rng, rate, 0.05, 0.006, 800, 10000),
    )
    return roar + crackles


def _sound_thunder(rng, n, rate, fps):
    """Booms start as a frame's display interval starts, well apart, one clearly the loudest."""
    frames = max(1, round(n / rate * fps))
    gap = max(1, round(0.7 * fps))
    slots = np.arange(0, max(frames - gap // 2, 1), gap)
    count = min(len(slots), int(rng.integers(2, 4)))
    chosen = rng.choice(slots, size=count, replace=False)
    starts = np.minimum(chosen + rng.integers(0, max(1, gap // 2), size=count), frames - 1)
    amplitudes = rng.uniform(0.3, 0.55, size=count)
    amplitudes[rng.integers(count)] = 1.0
    positions = np.minimum(np.round(starts / fps * rate).astype(int), n - 1)
    t = np.arange(rate) / rate
    thump = np.sin(2 * np.pi * (55 * t - 10 * t**2)) * np.minimum(t / 0.002, 1) * np.exp(-t / 0.1)
    kernel = thump + 0.3 * _decay(rng, rate, 1.0, 0.1, 30, 200)
    booms = _events(n, positions, amplitudes, kernel)
    return booms + 0.03 * _band_noise(rng, n, rate, 1500, 8000)


def _sound_water(rng, n, rate, fps):
    t = np.arange(n) / rate
    swell = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 1.0) * t + rng.uniform(0, 2 * np.pi))
    envelope = 0.3 + 0.7 * swell**2
    rumble = _band_noise(rng, n, rate, 30, 250) + 0.25 * _band_noise(rng, n, rate, 400, 3000)
    return rumble * envelope


def _sound_wind(rng, n, rate, fps):
    whoosh = _band_noise(rng, n, rate, 200, 1800) + 0.3 * _band_noise(rng, n, rate, 2000, 4000)
    return whoosh * _smooth_random(rng, n, 3, 0.1, 1.0)


# ---------------------------------------------------------------- painting building blocks


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [0, 1]: y "h 1", x "1 w"."""
    c = (np.arange(size) + 0.5) / size
    return c[:, None], c[None, :]


def _backdrop(size: int, horizon: float, palette: Palette) -> np.ndarray:
    """Sky gradient above the horizon, ground gradient below: "h w 3" in [0, 1]."""
    y, _ = _grid(size)
    sky_t = np.clip(y / horizon, 0, 1)[..., None]
    ground_t = np.clip((y - horizon) / (1 - horizon), 0, 1)[..., None]
    sky = (1 - sky_t) * np.array(palette["sky_top"]) + sky_t * np.array(palette["sky_low"])
    ground = (1 - ground_t) * np.array(palette["ground_far"]) + ground_t * np.array(
        palette["ground_near"]
    )
    image = np.where((y < horizon)[..., None], sky, ground)
    return np.broadcast_to(image, (size, size, 3)).copy()


def _jitter(rng: np.random.Generator, palette: Palette, amount: float = 0.06) -> Palette:
    """Per-clip colour variation (one brightness and one tint shift for the whole palette)."""
    gain = rng.uniform(1 - amount, 1 + amount)
    tint = rng.uniform(-amount / 2, amount / 2, size=3)
    return {k: tuple(np.clip(np.array(v) * gain + tint, 0, 1)) for k, v in palette.items()}


def _mix(base: np.ndarray, colour, alpha: np.ndarray) -> np.ndarray:
    """Blend `colour` over `base` with weight `alpha` (broadcast to "... h w")."""
    alpha = np.clip(alpha, 0, 1)[..., None]
    return base * (1 - alpha) + np.asarray(colour) * alpha


# Painters: (rng, drive "t" in [0, 1] (each frame's loudness / the clip's loudest), size, fps)
# -> frames "t size size 3" float in [0, 1].


def _paint_rain(rng, drive, size, fps):
    palette = _jitter(rng, PALETTES["rain"])
    horizon = rng.uniform(0.5, 0.65)
    y, x = _grid(size)
    t = np.arange(len(drive))[:, None, None] / fps
    columns = 48
    u = (x + 0.3 * y) * columns
    col = np.floor(u).astype(int)
    offset, speed, chance = rng.uniform(0, 1, (3, columns * 2))
    fall = (y * 3 + offset[col] - (2.5 + speed[col]) * t) % 1.0
    level = drive[:, None, None]
    streak = (fall < 0.25) & ((u % 1.0) < 0.45) & (chance[col] < 0.15 + 0.85 * level)
    frames = _backdrop(size, horizon, palette) * (1 - 0.15 * level[..., None])
    return _mix(frames, palette["accent"], 0.65 * streak)


def _paint_fire(rng, drive, size, fps):
    palette = _jitter(rng, PALETTES["fire"], 0.04)
    horizon = rng.uniform(0.55, 0.7)
    y, x = _grid(size)
    cx, cy = rng.uniform(0.35, 0.65), horizon + rng.uniform(0.08, 0.15)
    level = drive[:, None, None]
    radius = rng.uniform(0.09, 0.13) * (0.7 + 0.6 * level)
    dy = np.where(y < cy, (y - cy) * 0.55, (y - cy) * 1.6)  # a flame is taller than wide
    heat = np.exp(-((x - cx) ** 2 + dy**2) / (2 * radius**2)) * (0.35 + 0.65 * level)
    frames = _backdrop(size, horizon, palette)
    frames = (
        frames + 0.25 * level[..., None] * np.array(palette["accent"]) * (y > horizon)[..., None]
    )
    frames = _mix(frames, palette["accent"], 1.6 * heat)
    return _mix(frames, palette["core"], 2.5 * heat - 1.2)


def _paint_thunder(rng, drive, size, fps):
    palette = _jitter(rng, PALETTES["thunder"], 0.04)
    horizon = rng.uniform(0.6, 0.75)
    y, x = _grid(size)
    flash = drive[:, None, None] ** 2
    path = rng.uniform(0.25, 0.75) + np.cumsum(rng.normal(0, 0.6 / size, size))[:, None]
    bolt = (np.abs(x - path) < max(1.0, size / 64) / size) & (y < horizon)
    frames = _backdrop(size, horizon, palette)
    sky = (y < horizon) * 0.75 + (y >= horizon) * 0.25
    frames = _mix(frames, palette["accent"], flash * sky)
    return _mix(frames, (1.0, 1.0, 1.0), bolt * (flash > 0.25) * flash)


def _paint_water(rng, drive, size, fps):
    palette = _jitter(rng, PALETTES["water"])
    horizon = rng.uniform(0.35, 0.5)
    y, x = _grid(size)
    t = np.arange(len(drive))[:, None, None] / fps
    depth = np.clip(y - horizon, 0, None)
    phase = 2 * np.pi * (9 * depth**0.6 - rng.uniform(0.4, 0.8) * t) + 0.6 * np.sin(
        2 * np.pi * (2 * x + rng.uniform()) + 2 * t
    )
    crest = (0.5 + 0.5 * np.sin(phase)) ** 4 * (0.2 + 0.8 * drive[:, None, None])
    return _mix(_backdrop(size, horizon, palette), palette["accent"], 0.8 * crest * (y > horizon))


def _paint_wind(rng, drive, size, fps):
    palette = _jitter(rng, PALETTES["wind"])
    horizon = rng.uniform(0.55, 0.7)
    y, x = _grid(size)
    shift = np.cumsum(0.5 * drive / fps)[:, None, None]  # clouds move at the wind's speed
    cloud = np.zeros((len(drive), size, size))
    for _ in range(4):
        cx, cy = rng.uniform(0, 1), rng.uniform(0.1, horizon - 0.12)
        rx, ry = rng.uniform(0.12, 0.2), rng.uniform(0.04, 0.07)
        dx = (x - cx - shift + 0.5) % 1.0 - 0.5  # clouds wrap around
        np.maximum(cloud, np.exp(-((dx / rx) ** 2 + ((y - cy) / ry) ** 2)), out=cloud)
    frames = _mix(_backdrop(size, horizon, palette), palette["accent"], 1.3 * cloud)
    lean = 3 * drive[:, None, None] * (y - horizon)
    blades = 0.5 + 0.5 * np.sin(2 * np.pi * (40 * x + lean))
    return frames * (1 - 0.25 * blades * (y > horizon))[..., None]


PALETTES: dict[str, Palette] = {
    "rain": {
        "sky_top": (0.45, 0.48, 0.53),
        "sky_low": (0.62, 0.65, 0.68),
        "ground_far": (0.25, 0.33, 0.28),
        "ground_near": (0.14, 0.2, 0.16),
        "accent": (0.85, 0.88, 0.95),
    },
    "fire": {
        "sky_top": (0.02, 0.01, 0.06),
        "sky_low": (0.12, 0.05, 0.1),
        "ground_far": (0.1, 0.06, 0.04),
        "ground_near": (0.05, 0.03, 0.02),
        "accent": (1.0, 0.42, 0.05),
        "core": (1.0, 0.9, 0.45),
    },
    "thunder": {
        "sky_top": (0.1, 0.11, 0.2),
        "sky_low": (0.2, 0.21, 0.3),
        "ground_far": (0.07, 0.07, 0.09),
        "ground_near": (0.03, 0.03, 0.04),
        "accent": (0.85, 0.87, 1.0),
    },
    "water": {
        "sky_top": (0.3, 0.55, 0.9),
        "sky_low": (0.65, 0.8, 0.95),
        "ground_far": (0.05, 0.3, 0.55),
        "ground_near": (0.02, 0.15, 0.35),
        "accent": (0.75, 0.9, 1.0),
    },
    "wind": {
        "sky_top": (0.45, 0.7, 0.95),
        "sky_low": (0.8, 0.88, 0.95),
        "ground_far": (0.6, 0.7, 0.3),
        "ground_near": (0.35, 0.55, 0.15),
        "accent": (0.97, 0.97, 0.97),
    },
}

SceneFn = Callable[..., np.ndarray]
SCENES: dict[str, tuple[SceneFn, SceneFn, float]] = {
    # category: (sound, painter, peak level of the written audio)
    "fire": (_sound_fire, _paint_fire, 0.8),
    "rain": (_sound_rain, _paint_rain, 0.5),
    "thunder": (_sound_thunder, _paint_thunder, 0.95),
    "water": (_sound_water, _paint_water, 0.6),
    "wind": (_sound_wind, _paint_wind, 0.5),
}
CATEGORIES: tuple[str, ...] = tuple(sorted(SCENES))


# ---------------------------------------------------------------- clips and dataset


def frame_loudness(audio: np.ndarray, sample_rate: int, num_frames: int, fps: float) -> np.ndarray:
    """RMS of each frame's one-frame-long audio window, "t" (the drive of every painter)."""
    windows = segment_for_frames(torch.from_numpy(audio), sample_rate, num_frames, fps, 1.0 / fps)
    return windows.double().pow(2).mean(dim=-1).sqrt().numpy()


def _num_frames(seconds: float, fps: float) -> int:
    """round(seconds * fps): the clip's frame count (its audio lasts exactly that many frames)."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    num_frames = round(seconds * fps)
    if num_frames < 1:
        raise ValueError(f"a clip needs at least one frame: seconds={seconds} at fps={fps}")
    return num_frames


def synthesize_clip(
    category: str,
    seconds: float = 3.0,
    size: int = 128,
    fps: float = 15.0,
    sample_rate: int = 44100,
    seed: int | Sequence[int] = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """One clip: frames "t size size 3" uint8 and mono audio "samples" float32 in [-1, 1]."""
    if category not in SCENES:
        raise ValueError(f"unknown category {category!r}; choose from {', '.join(CATEGORIES)}")
    num_frames = _num_frames(seconds, fps)
    sound, paint, level = SCENES[category]
    rng = np.random.default_rng(seed)
    n = round(num_frames / fps * sample_rate)
    audio = sound(rng, n, sample_rate, fps)
    audio = (audio * level / (np.abs(audio).max() + 1e-12)).astype(np.float32)
    loudness = frame_loudness(audio, sample_rate, num_frames, fps)
    drive = loudness / (loudness.max() + 1e-12)
    frames = paint(rng, drive, size, fps)
    return np.clip(frames * 255 + 0.5, 0, 255).astype(np.uint8), audio


def write_synthetic_dataset(
    out: str | os.PathLike,
    categories: Sequence[str] | None = None,
    clips_per_category: int = 4,
    seconds: float = 3.0,
    size: int = 128,
    fps: float = 15.0,
    sample_rate: int = 44100,
    seed: int = 0,
    progress: bool = False,
) -> list[Path]:
    """Write `out/<category>/<category>_<index>.mp4` clips (h264 + AAC); returns their paths.

    Existing files of the same names are replaced. Every clip has round(seconds * fps) frames.

    Args:
        out: output folder (created if missing).
        categories: categories to write (default: all).
        clips_per_category: clips of each category.
        seconds: clip length.
        size: square frame size in pixels (even, >= 16).
        fps: frames per second.
        sample_rate: audio sample rate (Hz).
        seed: random seed.
        progress: show a progress bar.
    """
    categories = list(CATEGORIES if categories is None else categories)
    unknown = sorted(set(categories) - set(CATEGORIES))
    if unknown:
        raise ValueError(f"unknown categories {unknown}; choose from {', '.join(CATEGORIES)}")
    if clips_per_category < 1:
        raise ValueError(f"clips_per_category must be at least 1, got {clips_per_category}")
    if size < 16 or size % 2:
        raise ValueError(f"size must be an even number of pixels >= 16, got {size}")
    _num_frames(seconds, fps)
    out = Path(out)
    jobs = [(c, i) for c in categories for i in range(clips_per_category)]
    paths = []
    for category, index in tqdm(jobs, desc="synth-data", unit="clip", disable=not progress):
        folder = out / category
        folder.mkdir(parents=True, exist_ok=True)
        frames, audio = synthesize_clip(
            category,
            seconds,
            size,
            fps,
            sample_rate,
            seed=(seed, CATEGORIES.index(category), index),
        )
        path = folder / f"{category}_{index:03d}.mp4"
        paths.append(write_video(path, frames, fps, audio, sample_rate))
    return paths


DESCRIPTION = (
    "Write a synthetic audio-visual landscape dataset (mp4 clips, h264 + AAC) whose pictures "
    f"follow their sounds: {', '.join(CATEGORIES)}. Deterministic per seed. The layout "
    "(OUT/<category>/<clip>.mp4) is what `sgvideo prepare` and the training configs read. "
    "Example: sgvideo synth-data --out outputs/synth --clips-per-category 8"
)


@reports_user_errors("sgvideo synth-data", (ValueError, OSError))
def main(argv: list[str] | None = None) -> int:
    kwargs = parse_function_args(
        write_synthetic_dataset, ["--progress", "true", *(argv or [])], "sgvideo synth-data",
        DESCRIPTION,
    )  # fmt: skip
    if isinstance(kwargs, int):
        return kwargs
    paths = write_synthetic_dataset(**kwargs)
    print(f"wrote {len(paths)} clips to {kwargs['out']}")
    return 0
