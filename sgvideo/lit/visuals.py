"""Sample images, videos and sounds to whatever loggers a LightningModule has.

TensorBoard (Lightning's default logger once `tensorboard` is installed) gets them through its
SummaryWriter (`logger.experiment`): `add_image`, `add_audio`, and videos as animated GIF image
summaries, which is what `add_video` writes but without its moviepy dependency. Loggers with
`log_image` (Weights & Biases) get the images; CSV loggers nothing. Scalars need none of this:
`self.log` sends them to every logger. Call these on global rank zero only.

The sample files every stage writes into its run folder go through the same module:
`save_grid` (an image grid as a PNG, also to the image loggers: the prior's samples, stage 1's
real | generated rows) and `save_clip_pair` (stage 2's real and generated clips as a PNG strip
and an mp4 with the clip's sound, also to the loggers).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from PIL import Image
from torch import Tensor
from torchvision.utils import make_grid, save_image

from sgvideo.files import atomic_path
from sgvideo.pixels import to_uint8
from sgvideo.video_io import write_video


def _uint8(pixels: Tensor | np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """Float pixels in `value_range` (or uint8 as they are) -> uint8, same layout."""
    x = torch.as_tensor(pixels).detach().cpu()
    if x.dtype == torch.uint8:
        return x.numpy()
    low, high = value_range
    x = (x.float() - low) / (high - low)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def _writers(module):
    for logger in module.loggers:
        experiment = getattr(logger, "experiment", None)
        if hasattr(experiment, "add_image"):
            yield logger, experiment


def log_image(
    module, tag: str, image: Tensor | np.ndarray, value_range: tuple[float, float] = (-1, 1)
) -> None:
    """One image "h w c" (uint8, or float in `value_range`) to every image-taking logger."""
    pixels = _uint8(image, value_range)
    for logger in module.loggers:
        if hasattr(logger, "log_image"):
            logger.log_image(key=tag, images=[pixels], step=module.global_step)
    for _, writer in _writers(module):
        writer.add_image(tag, pixels, module.global_step, dataformats="HWC")


def gif_bytes(frames: np.ndarray, fps: float) -> bytes:
    """uint8 frames "t h w c" as an animated GIF that loops."""
    images = [Image.fromarray(f.squeeze(-1) if f.shape[-1] == 1 else f) for f in frames]
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=max(20, round(1000 / fps)),
        loop=0,
    )
    return buffer.getvalue()


def log_video(
    module,
    tag: str,
    frames: Tensor | np.ndarray,
    fps: float,
    value_range: tuple[float, float] = (-1, 1),
) -> None:
    """Videos "n t c h w" (uint8, or float in `value_range`), side by side, as one animated
    image summary (TensorBoard's Images tab plays it)."""
    from tensorboard.compat.proto.summary_pb2 import Summary

    pixels = rearrange(_uint8(frames, value_range), "n t c h w -> t h (n w) c")
    t, h, w, c = pixels.shape
    summary = Summary(
        value=[
            Summary.Value(
                tag=tag,
                image=Summary.Image(
                    height=h, width=w, colorspace=c, encoded_image_string=gif_bytes(pixels, fps)
                ),
            )
        ]
    )
    for _, writer in _writers(module):
        writer._get_file_writer().add_summary(summary, module.global_step)


def log_audio(module, tag: str, wave: Tensor | np.ndarray, sample_rate: int) -> None:
    """A mono waveform "samples" in [-1, 1] to TensorBoard's Audio tab."""
    samples = torch.as_tensor(wave).detach().float().cpu().clamp(-1, 1).reshape(1, -1)
    for _, writer in _writers(module):
        writer.add_audio(tag, samples, module.global_step, sample_rate=int(sample_rate))


def confusion_matrix(predicted: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """Counts "target predicted": row i, column j = samples of class i predicted as j."""
    index = target.long().cpu() * num_classes + predicted.long().cpu()
    return torch.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


def confusion_image(counts: Tensor, cell: int = 24) -> np.ndarray:
    """A confusion matrix as a picture "h w 3" uint8: rows (true classes) normalised, white 0
    to dark blue 1, one `cell`-pixel square per entry, a grey grid between them."""
    rows = counts.float() / counts.sum(dim=1, keepdim=True).clamp(min=1)
    value = rows.numpy()[..., None]
    colour = (255 - value * np.array([225.0, 175.0, 90.0])).astype(np.uint8)
    picture = colour.repeat(cell, axis=0).repeat(cell, axis=1)
    picture[::cell, :] = picture[:, ::cell] = 160
    return np.ascontiguousarray(picture)


def run_folder(module, name: str) -> Path:
    """`<the run's log dir>/<name>`, created: where a stage's sample files go."""
    folder = Path(module.trainer.log_dir or module.trainer.default_root_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_grid(module, images: Tensor, path: str | os.PathLike, tag: str, nrow: int) -> Path:
    """Images "b 3 h w" in [-1, 1] as a grid of `nrow` per row: a PNG at `path` (written
    atomically, its folder created) and the image loggers' `tag`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = make_grid(images.float().cpu(), nrow=nrow, normalize=True, value_range=(-1, 1))
    with atomic_path(path) as tmp:
        save_image(grid, tmp)
    log_image(module, tag, grid.permute(1, 2, 0), value_range=(0, 1))
    return path


def save_clip_pair(
    module,
    path: str | os.PathLike,
    real: Tensor,
    fake: Tensor,
    fps: float,
    waveform: Tensor | None = None,
    sample_rate: int = 44100,
) -> Path:
    """Clips "t 3 h w" in [-1, 1]: real (top) vs generated (bottom) as a PNG strip at `path`
    and, beside it, an mp4 of the two side by side with the clip's sound `waveform`
    "samples"; the strip also goes to the image loggers (`samples`), and to TensorBoard the
    two clips as a video (real | generated) and the sound."""
    path = Path(path)
    pixels = to_uint8(torch.stack([real, fake]).float()).cpu()
    strip = rearrange(pixels, "r t c h w -> (r h) (t w) c").numpy()
    with atomic_path(path) as tmp:
        Image.fromarray(strip).save(tmp)
    log_image(module, "samples", strip)
    log_video(module, "samples/video", pixels, fps=fps)
    if waveform is not None:
        log_audio(module, "samples/sound", waveform, sample_rate)
    write_video(
        path.with_suffix(".mp4"),
        np.ascontiguousarray(rearrange(pixels, "r t c h w -> t h (r w) c").numpy()),
        fps=fps,
        audio=None if waveform is None else waveform.float().cpu(),
        sample_rate=sample_rate,
    )
    return path
