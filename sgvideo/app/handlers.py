"""The app's handlers: plain functions that the page calls and the tests call directly.

Each calls the library functions the command-line tools call and raises ValueError /
FileNotFoundError for bad input; `shown_in_page` turns those into the page's messages. Models
load once per checkpoint (`ModelCache`).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from sgvideo.audio import read_audio
from sgvideo.errors import USER_ERRORS, describe, one_line
from sgvideo.generate import render_video, start_latent
from sgvideo.inference.editing import EditSettings, SoundEditor
from sgvideo.inference.latents import render, seed_latent
from sgvideo.inference.media import check_fps, image_tensor, read_image, resolve_device, seeded
from sgvideo.inference.pipeline import SoundToVideo
from sgvideo.inference.projection import project_image
from sgvideo.inference.sound import ExponentialSmoother
from sgvideo.pixels import frames_to_uint8

DEMO_DIR = Path("outputs/demo")
MAX_SOUND_SECONDS = 120.0  # longer sounds are `sgvideo generate`'s job: a page waits minutes
STRIP_FRAMES = 8
STARTS = ("sound", "seed", "image", "category")
GROUPS = ("coarse", "mid", "fine")

log = logging.getLogger(__name__)
T = TypeVar("T")


class ModelCache:
    """Models loaded once per (kind, checkpoint file, its modification time) and shared by every
    browser tab; a retrained checkpoint at the same path is loaded afresh."""

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self._lock = threading.Lock()
        self._models: dict[tuple[str, str, int], Any] = {}

    def _get(self, kind: str, checkpoint: str | os.PathLike, load: Callable[[Path], T]) -> T:
        path = Path(str(checkpoint or "").strip()).expanduser()
        if not str(checkpoint or "").strip() or not path.is_file():
            raise FileNotFoundError(
                f"{kind} checkpoint not found: {path} (run `make demo`, or give the path of a "
                f"trained {kind} checkpoint)"
            )
        key = (kind, str(path.resolve()), path.stat().st_mtime_ns)
        with self._lock:
            if key not in self._models:
                self._models = {k: v for k, v in self._models.items() if k[:2] != key[:2]}
                self._models[key] = load(path)
            return self._models[key]

    def video(self, checkpoint: str | os.PathLike):
        """The stage-2 checkpoint's `SoundToVideo`."""
        device = resolve_device(self.device)
        return self._get("stage-2", checkpoint, lambda p: SoundToVideo.from_checkpoint(p, device))

    def editor(self, checkpoint: str | os.PathLike):
        """The stage-1 checkpoint's `SoundEditor`."""
        device = resolve_device(self.device)
        return self._get("stage-1", checkpoint, lambda p: SoundEditor.from_checkpoint(p, device))


def read_sound(path: str | os.PathLike | None, max_seconds: float = MAX_SOUND_SECONDS):
    """The `Sound` of an upload, recording or chosen file; none, unreadable or longer than
    `max_seconds` is a ValueError with the message the page shows."""
    if not path:
        raise ValueError("no sound: upload or record one, or pick a demo sound")
    sound = read_audio(path)
    seconds = sound.wave.shape[-1] / sound.rate
    if seconds > max_seconds:
        raise ValueError(
            f"the sound lasts {seconds:.0f} s; the app takes at most {max_seconds:g} s "
            "(`sgvideo generate` takes any length)"
        )
    return sound


def demo_sounds(demo_dir: str | os.PathLike = DEMO_DIR) -> dict[str, str]:
    """`make demo`'s held-out sound of each category (label -> path); none before the demo."""
    from sgvideo.demo import DemoPaths, held_out_sounds

    paths = DemoPaths(Path(demo_dir))
    if not paths.synth.is_dir():
        return {}
    try:
        sounds = held_out_sounds(paths)
    except (OSError, ValueError) as error:  # a half-written dataset: the page still opens
        log.warning("no demo sounds from %s: %s", paths.synth, describe(error))
        return {}
    return {f"{category} ({path.name})": str(path) for category, path in sounds.items()}


def image_array(image: np.ndarray | str | os.PathLike | None) -> np.ndarray | None:
    """An image input (array from the page, or a file path) as "h w 3" uint8 RGB."""
    if image is None:
        return None
    if isinstance(image, str | os.PathLike):
        return read_image(image)
    rgb = np.asarray(image)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=-1)
    if rgb.ndim != 3 or rgb.shape[-1] not in (3, 4) or 0 in rgb.shape:
        raise ValueError(f"expected an RGB image, got an array of shape {rgb.shape}")
    return np.ascontiguousarray(rgb[..., :3].astype(np.uint8))


def sound_to_video(
    models: ModelCache,
    out_dir: str | os.PathLike,
    audio: str | os.PathLike | None,
    checkpoint: str | os.PathLike,
    start: str = "sound",
    seed: int | None = 0,
    image: np.ndarray | str | None = None,
    category: str | None = None,
    fps: float | None = None,
    smoothing: float = 0.0,
    max_seconds: float = MAX_SOUND_SECONDS,
    project_steps: int = 200,
    progress: bool = True,
) -> tuple[Path, list[Path]]:
    """`sgvideo generate` of one sound into a new folder under `out_dir`: the mp4 (with the sound)
    and STRIP_FRAMES of its frames spread over it (PNG paths). `fps` None or 0 is the
    checkpoint's training rate; `start` picks w^0 (`sgvideo.generate.start_latent`)."""
    if start not in STARTS:
        raise ValueError(f"start must be one of {', '.join(STARTS)}, got {start!r}")
    fps = float(fps) if fps else None
    if fps is not None:
        check_fps(fps)
    ExponentialSmoother(float(smoothing))  # checks it before anything loads
    chosen: dict[str, Any] = {}
    if start == "seed":
        chosen["seed"] = _whole(seed, "seed")
    elif start == "image":
        chosen["image"] = image_array(image)
        if chosen["image"] is None:
            raise ValueError("start 'image': upload an image (or pick a frame) first")
    elif start == "category":
        if not (category or "").strip():
            raise ValueError("start 'category': name a category of a text-init checkpoint")
        chosen["category"] = category.strip()
    sound = read_sound(audio, max_seconds)
    pipeline = models.video(checkpoint)
    wave = sound.at(pipeline.sample_rate)
    fps = pipeline.step_rate if fps is None else fps
    rng_seed = chosen.get("seed", 0)
    with seeded(rng_seed):
        w0 = start_latent(
            pipeline, wave, fps, project_steps=project_steps, progress=progress, **chosen
        )
    job = _job_dir(out_dir)
    video = render_video(
        pipeline,
        wave,
        job / "video.mp4",
        fps,
        w0,
        rng_seed,
        float(smoothing),
        frames_dir=job / "frames",
        progress=progress,
    )
    frames = sorted((job / "frames").glob("frame_*.png"))
    picks = np.unique(np.linspace(0, len(frames) - 1, min(STRIP_FRAMES, len(frames))).round())
    return video, [frames[int(i)] for i in picks]


def edit_with_sound(
    models: ModelCache,
    audio: str | os.PathLike | None,
    checkpoint: str | os.PathLike,
    image: np.ndarray | str | None = None,
    seed: int | None = 0,
    groups: Sequence[str] = GROUPS,
    strength: float = 0.5,
    text: str | None = None,
    mix: float = 0.5,
    project_steps: int = 200,
    truncation: float = 0.7,
    max_seconds: float = MAX_SOUND_SECONDS,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """`sgvideo edit-image` of an image (projected into W+) or, without one, of a seeded random
    latent, with a sound (and a text mixed in by `mix`): the before (G(w)) and after images,
    "h w 3" uint8."""
    settings = EditSettings(
        groups=list(groups or []),
        strength=float(strength),
        text=(text or "").strip() or None,
        mix=float(mix),
    )
    rgb = image_array(image)
    seed = None if rgb is not None else _whole(seed, "seed")
    sound = read_sound(audio, max_seconds)
    editor = models.editor(checkpoint)
    g = editor.generator
    wave = sound.at(editor.inverter.sample_rate)
    if rgb is not None:
        target = image_tensor(rgb, g.size).to(editor.device)
        w = project_image(
            g, target, project_steps, noise_mode=editor.noise_mode, progress=progress
        ).w
    else:
        w = seed_latent(g, seed, truncation)
    w_sound, embed = editor.clip_sound(wave, editor.needs_embedding(settings))
    with seeded(0):
        edited = editor.edit(w, w_sound, embed, settings, progress=progress)
    before, after = frames_to_uint8(render(g, torch.stack([w, edited]), editor.noise_mode))
    return before, after


def _whole(value: float | None, name: str) -> int:
    if value is None or float(value) != int(value):
        raise ValueError(f"{name} must be a whole number, got {value}")
    return int(value)


def _job_dir(out_dir: str | os.PathLike) -> Path:
    job = Path(out_dir) / uuid.uuid4().hex[:12]
    job.mkdir(parents=True)
    return job


def shown_in_page(handler: Callable[..., T]) -> Callable[..., T]:
    """`handler` with the user's mistakes (USER_ERRORS) raised as `gr.Error`, which the page
    shows as a message; anything else is logged with its traceback and shown in one line."""
    import gradio as gr

    @functools.wraps(handler)
    def wrapped(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except gr.Error:
            raise
        except USER_ERRORS as error:
            raise gr.Error(one_line(str(error)), print_exception=False) from None
        except Exception as error:
            log.exception("%s failed", handler.__name__)
            raise gr.Error(f"internal error: {describe(error)}", print_exception=False) from None

    return wrapped
