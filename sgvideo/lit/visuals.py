"""Sample images, videos and sounds to whatever loggers a LightningModule has.

TensorBoard (Lightning's default logger once `tensorboard` is installed) gets them through its
SummaryWriter (`logger.experiment`): `add_image`, `add_audio`, and videos as animated GIF image
summaries, which is what `add_video` writes but without its moviepy dependency. Loggers with
`log_image` (Weights & Biases) get the images; CSV loggers nothing. Scalars need none of this:
`self.log` sends them to every logger. Call these on global rank zero only.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from einops import rearrange
from PIL import Image
from torch import Tensor


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
