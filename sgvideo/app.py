"""`sgvideo app`: a browser app (Gradio) for sound -> video, sound-guided editing and sound + text.

Served on 127.0.0.1 by default, with no share link, no analytics and nothing fetched from
outside the machine. Every tab calls the library functions the command-line tools call:
Sound to video is `sgvideo generate` (`SoundToVideo`, `start_latent`, `render_video`), Edit an
image and Sound + text are `sgvideo edit-image` (`SoundEditor`, `project_image`, `render`).
Models load once per checkpoint (`ModelCache`); the handlers are plain functions that raise
ValueError / FileNotFoundError for bad input, shown in the page as a message (`shown_in_page`).
Model work runs one job at a time through Gradio's queue: a second browser tab waits its turn
(and sees its place in the queue) instead of racing the first for the models and the RNG.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from sgvideo.errors import USER_ERRORS, describe, one_line, reports_user_errors

DEMO_DIR = Path("outputs/demo")
MAX_SOUND_SECONDS = 120.0  # longer sounds are `sgvideo generate`'s job: a page waits minutes
MAX_UPLOAD = "50mb"
STRIP_FRAMES = 8
STARTS = ("sound", "seed", "image", "category")
GROUPS = ("coarse", "mid", "fine")
QUEUE = "models"  # the one Gradio concurrency group every model-running event joins

log = logging.getLogger(__name__)
T = TypeVar("T")


# ---------------------------------------------------------------------------- models and inputs


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
        from sgvideo.generate import SoundToVideo, resolve_device

        device = resolve_device(self.device)
        return self._get("stage-2", checkpoint, lambda p: SoundToVideo.from_checkpoint(p, device))

    def editor(self, checkpoint: str | os.PathLike):
        """The stage-1 checkpoint's `SoundEditor`."""
        from sgvideo.edit import SoundEditor
        from sgvideo.generate import resolve_device

        device = resolve_device(self.device)
        return self._get("stage-1", checkpoint, lambda p: SoundEditor.from_checkpoint(p, device))


def read_sound(path: str | os.PathLike | None, max_seconds: float = MAX_SOUND_SECONDS):
    """The `Sound` of an upload, recording or chosen file; none, unreadable or longer than
    `max_seconds` is a ValueError with the message the page shows."""
    from sgvideo.audio import read_audio

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


def _image_array(image: np.ndarray | str | os.PathLike | None) -> np.ndarray | None:
    """An image input (array from the page, or a file path) as "h w 3" uint8 RGB."""
    if image is None:
        return None
    if isinstance(image, str | os.PathLike):
        from sgvideo.edit import read_image

        return read_image(image)
    rgb = np.asarray(image)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=-1)
    if rgb.ndim != 3 or rgb.shape[-1] not in (3, 4) or 0 in rgb.shape:
        raise ValueError(f"expected an RGB image, got an array of shape {rgb.shape}")
    return np.ascontiguousarray(rgb[..., :3].astype(np.uint8))


# ---------------------------------------------------------------------------- handlers


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
    checkpoint's training rate; `start` picks w^0 (`generate.start_latent`)."""
    from sgvideo.generate import (
        ExponentialSmoother,
        check_fps,
        render_video,
        seeded,
        start_latent,
    )

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
        chosen["image"] = _image_array(image)
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
    import torch

    from sgvideo.edit import EditSettings, image_tensor, project_image, render
    from sgvideo.generate import frames_to_uint8, seed_latent, seeded

    settings = EditSettings(
        groups=list(groups or []),
        strength=float(strength),
        text=(text or "").strip() or None,
        mix=float(mix),
    )
    rgb = _image_array(image)
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


# ---------------------------------------------------------------------------- the page


def build_app(
    checkpoint: str | os.PathLike = DEMO_DIR / "checkpoints" / "generator.ckpt",
    inversion: str | os.PathLike = DEMO_DIR / "checkpoints" / "inversion.ckpt",
    demo_dir: str | os.PathLike = DEMO_DIR,
    out_dir: str | os.PathLike | None = None,
    device: str = "cpu",
    max_seconds: float = MAX_SOUND_SECONDS,
):
    """The Gradio Blocks of the three tabs (not launched: see `launch`)."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    import gradio as gr

    models = ModelCache(device)
    out_dir = Path(out_dir or tempfile.mkdtemp(prefix="sgvideo-app-"))
    sounds = demo_sounds(demo_dir)

    def pick_sound(upload: str | None, choice: str | None) -> str | None:
        return upload or sounds.get(choice or "")

    @shown_in_page
    def on_generate(
        upload,
        choice,
        ckpt,
        start,
        seed,
        image,
        category,
        fps,
        smoothing,
        progress=gr.Progress(track_tqdm=True),  # noqa: B008 (Gradio's way to ask for a bar)
    ):
        video, frames = sound_to_video(
            models,
            out_dir,
            pick_sound(upload, choice),
            ckpt,
            start,
            seed,
            image,
            category,
            fps,
            smoothing,
            max_seconds,
        )
        return str(video), [str(f) for f in frames]

    @shown_in_page
    def on_edit(
        image,
        seed,
        upload,
        choice,
        ckpt,
        groups,
        strength,
        text=None,
        mix=0.5,
        progress=gr.Progress(track_tqdm=True),  # noqa: B008
    ):
        return edit_with_sound(
            models,
            pick_sound(upload, choice),
            ckpt,
            image,
            seed,
            groups,
            strength,
            text,
            mix,
            max_seconds=max_seconds,
        )

    def sound_inputs():
        upload = gr.Audio(
            sources=["upload", "microphone"], type="filepath", label="sound (upload or record)"
        )
        choice = gr.Dropdown(
            list(sounds),
            value=None,
            label="... or a held-out demo sound",
            info=None if sounds else f"none yet: `make demo` writes them to {demo_dir}",
        )
        return upload, choice

    def edit_inputs():
        with gr.Row():
            image = gr.Image(type="numpy", image_mode="RGB", label="image (none: a seeded one)")
            seed = gr.Number(value=0, precision=0, label="seed (when no image)")
        upload, choice = sound_inputs()
        ckpt = gr.Textbox(str(inversion), label="stage-1 checkpoint")
        groups = gr.CheckboxGroup(list(GROUPS), value=list(GROUPS), label="style groups")
        strength = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="strength")
        return image, seed, upload, choice, ckpt, groups, strength

    def before_after():
        with gr.Row():
            return gr.Image(label="before", interactive=False), gr.Image(
                label="after", interactive=False
            )

    with gr.Blocks(title="sgvideo", analytics_enabled=False) as app:
        gr.Markdown("# sgvideo: sound to video")
        with gr.Tab("Sound to video"):
            upload, choice = sound_inputs()
            ckpt = gr.Textbox(str(checkpoint), label="stage-2 checkpoint")
            with gr.Row():
                start = gr.Radio(list(STARTS), value="sound", label="start from")
                seed = gr.Number(value=0, precision=0, label="seed")
                category = gr.Textbox(label="category (text-init checkpoints)")
            with gr.Row():
                start_image = gr.Image(
                    type="numpy", image_mode="RGB", label="start image", height=160
                )
                fps = gr.Number(value=0, label="fps (0: the checkpoint's training rate)")
                smoothing = gr.Slider(0.0, 0.95, value=0.0, step=0.05, label="smoothing")
            run = gr.Button("Generate", variant="primary", elem_id="generate")
            video = gr.Video(label="video", elem_id="video", format="mp4", height=320)
            strip = gr.Gallery(
                label="frames (click one to edit it)",
                columns=STRIP_FRAMES,
                height="auto",
                elem_id="frames",
            )
        with gr.Tab("Edit an image"):
            edit = edit_inputs()
            run_edit = gr.Button("Edit", variant="primary", elem_id="edit")
            edit_out = before_after()
        with gr.Tab("Sound + text"):
            mixed = edit_inputs()
            text = gr.Textbox("a photo of a snowy mountain", label="text")
            mix = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="mix (0: sound only, 1: text)")
            run_mixed = gr.Button("Edit", variant="primary", elem_id="mix")
            mixed_out = before_after()

        run.click(
            on_generate,
            [upload, choice, ckpt, start, seed, start_image, category, fps, smoothing],
            [video, strip],
            concurrency_id=QUEUE,
        )
        run_edit.click(on_edit, list(edit), list(edit_out), concurrency_id=QUEUE)
        run_mixed.click(on_edit, [*mixed, text, mix], list(mixed_out), concurrency_id=QUEUE)

        def take_frame(evt: gr.SelectData):
            return evt.value["image"]["path"] if isinstance(evt.value, dict) else evt.value

        take_frame.__annotations__["evt"] = gr.SelectData  # gradio reads it; gr is local here
        strip.select(take_frame, None, edit[0])
    app.queue(default_concurrency_limit=1)
    app.sgvideo_out_dir = out_dir
    return app


def launch(app, host: str = "127.0.0.1", port: int | None = None, block: bool = True, **kwargs):
    """Serve `app` locally: no share link, no server-side rendering (it would need Node), uploads
    up to MAX_UPLOAD, only the app's own output folder served as files."""
    import gradio as gr

    return app.launch(
        server_name=host,
        server_port=port,
        share=False,
        ssr_mode=False,
        prevent_thread_lock=not block,
        max_file_size=MAX_UPLOAD,
        allowed_paths=[str(app.sgvideo_out_dir)],
        theme=gr.themes.Default(),
        **kwargs,
    )


# ---------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sgvideo app",
        description="A browser app for sound -> video, editing with a sound, sound + text.",
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to serve on (default: loopback only)")
    add("--port", type=int, default=7860, help="port (default 7860)")
    add("--checkpoint", default=str(DEMO_DIR / "checkpoints" / "generator.ckpt"))
    add("--inversion", default=str(DEMO_DIR / "checkpoints" / "inversion.ckpt"))
    add("--demo-dir", default=str(DEMO_DIR), help="where `make demo` wrote its held-out sounds")
    add("--out-dir", default=None, help="where videos go (default: a new temporary folder)")
    add("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    add("--max-seconds", type=float, default=MAX_SOUND_SECONDS, help="longest sound accepted")
    return parser


@reports_user_errors("sgvideo app")
def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:
        return int(stop.code or 0)
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise ValueError("the app needs Gradio: pip install -e '.[app]' (or make setup)") from None
    app = build_app(
        args.checkpoint,
        args.inversion,
        args.demo_dir,
        args.out_dir,
        args.device,
        args.max_seconds,
    )
    launch(app, args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
