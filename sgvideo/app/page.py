"""The app's page: the Gradio Blocks of the three tabs (`build_app`) and the local server
(`launch`). Model work runs one job at a time through Gradio's queue: a second browser tab waits
its turn (and sees its place in the queue) instead of racing the first for the models and the RNG.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sgvideo.app.handlers import (
    DEMO_DIR,
    GROUPS,
    MAX_SOUND_SECONDS,
    STARTS,
    STRIP_FRAMES,
    ModelCache,
    demo_sounds,
    edit_with_sound,
    shown_in_page,
    sound_to_video,
)

MAX_UPLOAD = "50mb"
QUEUE = "models"  # the one Gradio concurrency group every model-running event joins


def build_app(
    checkpoint: str | os.PathLike = DEMO_DIR / "checkpoints" / "trajectory.ckpt",
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

    # Gradio passes the inputs in the order each click lists them
    @shown_in_page
    def on_generate(
        upload,
        choice,
        *settings,  # checkpoint, start, seed, image, category, fps, smoothing
        progress=gr.Progress(track_tqdm=True),  # noqa: B008 (Gradio's way to ask for a bar)
    ):
        sound = pick_sound(upload, choice)
        video, frames = sound_to_video(models, out_dir, sound, *settings, max_seconds)
        return str(video), [str(f) for f in frames]

    @shown_in_page
    def on_edit(
        image,
        seed,
        upload,
        choice,
        ckpt,
        *settings,  # groups, strength[, text, mix]
        progress=gr.Progress(track_tqdm=True),  # noqa: B008
    ):
        sound = pick_sound(upload, choice)
        return edit_with_sound(models, sound, ckpt, image, seed, *settings, max_seconds=max_seconds)

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
