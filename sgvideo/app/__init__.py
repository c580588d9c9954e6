"""`sgvideo app`: a browser app (Gradio) for sound -> video, sound-guided editing and sound + text.

Served on 127.0.0.1 by default, with no share link, no analytics and nothing fetched from
outside the machine. Every tab calls the library functions the command-line tools call:
Sound to video is `sgvideo generate` (`SoundToVideo`, `start_latent`, `render_video`), Edit an
image and Sound + text are `sgvideo edit-image` (`SoundEditor`, `project_image`, `render`).

handlers  the handlers (plain functions, tested without a browser) and `ModelCache`
page      the Gradio page (`build_app`) and the local server (`launch`)
"""

from __future__ import annotations

from sgvideo.app.handlers import DEMO_DIR, MAX_SOUND_SECONDS
from sgvideo.errors import reports_user_errors
from sgvideo.tool_cli import parse_function_args


def serve(
    host: str = "127.0.0.1",
    port: int = 7860,
    checkpoint: str = str(DEMO_DIR / "checkpoints" / "trajectory.ckpt"),
    inversion: str = str(DEMO_DIR / "checkpoints" / "inversion.ckpt"),
    demo_dir: str = str(DEMO_DIR),
    out_dir: str | None = None,
    device: str = "cpu",
    max_seconds: float = MAX_SOUND_SECONDS,
) -> None:
    """Build the page and serve it until interrupted.

    Args:
        host: address to serve on (default: loopback only).
        port: port.
        checkpoint: stage-2 checkpoint preselected in Sound to video.
        inversion: stage-1 checkpoint preselected in the editing tabs.
        demo_dir: where `make demo` wrote its held-out sounds.
        out_dir: where videos go (default: a new temporary folder).
        device: cpu, cuda, cuda:1, ...
        max_seconds: longest sound accepted.
    """
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise ValueError("the app needs Gradio: pip install -e '.[app]' (or make setup)") from None
    from sgvideo.app.page import build_app, launch

    launch(build_app(checkpoint, inversion, demo_dir, out_dir, device, max_seconds), host, port)


@reports_user_errors("sgvideo app")
def main(argv: list[str] | None = None) -> int:
    description = "A browser app for sound -> video, editing with a sound, sound + text."
    kwargs = parse_function_args(serve, argv, "sgvideo app", description)
    if isinstance(kwargs, int):  # --help, --print_config
        return kwargs
    serve(**kwargs)
    return 0
