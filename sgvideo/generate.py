"""`sgvideo generate`: a sound file of any length -> an mp4 with that sound.

The waveform is loaded once at the checkpoint's sample rate; `SoundToVideo`
(`sgvideo.inference.pipeline`, whose doc gives the pipeline) turns it into frames chunk by
chunk, and the frames go to the mp4 (h264, the input sound muxed as AAC) as they are made.

Start latent w^0: the first window's sound latent (default; the training's `init: audio`), a
seeded random latent truncated toward w_avg (`seed`), a projected image (`image`), or a
text-init checkpoint's category start (`category`).
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from torch import Tensor
from tqdm import tqdm

from sgvideo.audio import read_audio
from sgvideo.errors import reports_user_errors
from sgvideo.files import refuse_overwriting_inputs
from sgvideo.inference.latents import seed_latent
from sgvideo.inference.media import (
    VIDEO_SUFFIXES,
    GifWriter,
    check_fps,
    check_frames_dir,
    check_output_path,
    image_tensor,
    muxable_audio,
    read_image,
    resolve_device,
    seeded,
)
from sgvideo.inference.pipeline import DEFAULT_SMOOTHING, SoundToVideo
from sgvideo.inference.projection import project_image
from sgvideo.inference.sound import ExponentialSmoother
from sgvideo.pixels import frames_to_uint8
from sgvideo.tool_cli import parse_function_args
from sgvideo.video_io import VideoWriter


def start_latent(
    pipeline: SoundToVideo,
    wave: Tensor,
    fps: float,
    seed: int | None = None,
    image: np.ndarray | None = None,
    category: str | None = None,
    truncation: float = 0.7,
    project_steps: int = 200,
    progress: bool = True,
) -> Tensor:
    """w^0 "n s" from at most one of `seed`, `image` (RGB "h w 3" uint8, projected into W+),
    `category`; else the first window's."""
    given = [
        name
        for name, v in (("seed", seed), ("image", image), ("category", category))
        if v is not None
    ]
    if len(given) > 1:
        raise ValueError(f"give at most one start: {' or '.join(given)}")
    if image is not None:
        target = image_tensor(image, pipeline.size).to(pipeline.device)
        return project_image(pipeline.generator, target, steps=project_steps, progress=progress).w
    if category is not None:
        return pipeline.category_latent(category)
    if seed is not None:
        return seed_latent(pipeline.generator, seed, truncation)
    return pipeline.audio_latent(wave, fps)


def generate_video(
    audio_path: str | os.PathLike,
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    fps: float | None = None,
    seed: int | None = None,
    image: str | os.PathLike | None = None,
    category: str | None = None,
    truncation: float = 0.7,
    smoothing: float = DEFAULT_SMOOTHING,
    batch_size: int = 16,
    device: str = "cpu",
    frames_dir: str | os.PathLike | None = None,
    gif: str | os.PathLike | None = None,
    generator_path: str | os.PathLike | None = None,
    inversion_path: str | os.PathLike | None = None,
    project_steps: int = 200,
    progress: bool = True,
) -> Path:
    """Generate the video of a sound file and write it to `out` (mp4 with the sound); returns it.

    `fps` None is the trajectory's training frame rate (the checkpoint's `1 / window_seconds`),
    where motion lands exactly on the frames the net stepped; `seed` None starts from the first
    window's sound latent (noise then uses seed 0); see the module doc for the pipeline.
    `frames_dir` also gets every frame as PNG, `gif` an animated GIF. Nothing is left at `out`
    or `gif` when anything fails. Every input and output is checked before the models load, so
    a mistake costs no loading time.

    Args:
        audio_path: sound file (wav/flac/mp3/ogg, or a video's sound track); option --audio.
        checkpoint: stage-2 checkpoint (sgvideo trajectory fit).
        out: output video (.mp4); its folder must exist.
        fps: frames per second, at most 240 (default: the rate stage 2 was trained at).
        seed: start from a seeded random latent (default: from the first window's sound
            latent); also seeds the noise.
        image: start from this image, projected into W+.
        category: start from a text-init checkpoint's category latent.
        truncation: truncation of the --seed start latent.
        smoothing: weight of the previous latent in an EMA of the frame latents (0: off).
        batch_size: frames per chunk (memory vs speed).
        device: cpu, cuda, cuda:1, ...
        frames_dir: also write every frame as PNG into this folder.
        gif: also write an animated GIF.
        generator_path: StyleGAN2 .pt (default: the checkpoint's path); option --generator.
        inversion_path: stage-1 checkpoint (default: the checkpoint's path); option --inversion.
        project_steps: optimisation steps for --image.
        progress: show a progress bar (--no-progress: none).
    """
    out = check_output_path(out, VIDEO_SUFFIXES, "--out")
    gif = None if gif is None else check_output_path(gif, (".gif",), "--gif")
    refuse_overwriting_inputs(
        {"--out": out, "--gif": gif},
        {"--audio": audio_path, "--image": image, "--checkpoint": checkpoint},
    )
    frames_dir = None if frames_dir is None else check_frames_dir(frames_dir)
    if fps is not None:
        check_fps(fps)
    ExponentialSmoother(smoothing)
    sound = read_audio(audio_path)
    rgb = None if image is None else read_image(image)
    pipeline = SoundToVideo.from_checkpoint(
        checkpoint, resolve_device(device), batch_size, generator_path, inversion_path
    )
    wave = sound.at(pipeline.sample_rate)
    fps = pipeline.step_rate if fps is None else fps
    rng_seed = 0 if seed is None else seed
    with seeded(rng_seed):
        w0 = start_latent(
            pipeline, wave, fps, seed, rgb, category, truncation, project_steps, progress
        )
    return render_video(
        pipeline, wave, out, fps, w0, rng_seed, smoothing, frames_dir, gif, progress
    )


def render_video(
    pipeline: SoundToVideo,
    wave: Tensor,
    out: str | os.PathLike,
    fps: float,
    w0: Tensor,
    seed: int = 0,
    smoothing: float = DEFAULT_SMOOTHING,
    frames_dir: str | os.PathLike | None = None,
    gif: str | os.PathLike | None = None,
    progress: bool = True,
) -> Path:
    """Stream the frames of `wave` ("samples" at the pipeline's rate) from start latent `w0`
    into `out` with the sound, chunk by chunk (also PNGs into `frames_dir`, a GIF to `gif`)."""
    total = pipeline.frame_count(wave.shape[-1], fps)
    mux_wave, mux_rate = muxable_audio(wave, pipeline.sample_rate)
    with seeded(seed), contextlib.ExitStack() as stack:
        writer = stack.enter_context(VideoWriter(out, fps, pipeline.size, mux_wave, mux_rate))
        gif_writer = stack.enter_context(GifWriter(Path(gif), fps, pipeline.size)) if gif else None
        if frames_dir is not None:
            frames_dir = Path(frames_dir)
            frames_dir.mkdir(parents=True, exist_ok=True)
        bar = stack.enter_context(
            tqdm(total=total, unit="frame", desc="generate", disable=not progress)
        )
        for chunk in pipeline.frames(wave, fps, w0, seed, smoothing):
            pixels = frames_to_uint8(chunk)
            if frames_dir is not None:
                for i, rgb in enumerate(pixels, start=writer.frames_written):
                    Image.fromarray(rgb).save(frames_dir / f"frame_{i:06d}.png")
            writer.write(pixels)
            if gif_writer is not None:
                gif_writer.write(pixels)
            bar.update(len(pixels))
    return Path(out)


# ---------------------------------------------------------------------------- command line

DESCRIPTION = (
    "Generate a video from a sound file with a trained stage-2 checkpoint: h264 mp4 with the "
    "sound muxed as AAC, round(duration x fps) frames."
)
FLAGS = {"audio": "audio_path", "generator": "generator_path", "inversion": "inversion_path"}


@reports_user_errors("sgvideo generate")
def main(argv: list[str] | None = None) -> int:
    kwargs = parse_function_args(
        generate_video, argv, "sgvideo generate", DESCRIPTION, FLAGS,
        exclusive=[("seed", "image", "category")],
    )  # fmt: skip
    if isinstance(kwargs, int):
        return kwargs
    print(f"wrote {generate_video(**kwargs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
