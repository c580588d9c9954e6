"""Samples to TensorBoard: images, videos (animated GIF summaries), sounds, confusion matrices."""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import torch
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from sgvideo.lit.visuals import (
    confusion_image,
    confusion_matrix,
    log_audio,
    log_image,
    log_video,
)


def test_images_videos_and_sounds_reach_tensorboard(tmp_path) -> None:
    tensorboard = TensorBoardLogger(tmp_path, name="run")
    module = SimpleNamespace(loggers=[tensorboard, CSVLogger(tmp_path)], global_step=7)
    log_image(module, "samples", torch.rand(16, 24, 3) * 2 - 1)
    frames = torch.randint(0, 256, (2, 5, 3, 8, 8), dtype=torch.uint8)
    log_video(module, "samples/video", frames, fps=15.0)
    log_audio(module, "samples/sound", torch.sin(torch.arange(8000) / 10.0), 16000)
    tensorboard.experiment.flush()
    events = EventAccumulator(tensorboard.log_dir, size_guidance={"images": 0}).Reload()
    assert set(events.Tags()["images"]) == {"samples", "samples/video"}
    assert events.Tags()["audio"] == ["samples/sound"]
    video = events.Images("samples/video")[0]
    assert (video.step, video.width, video.height) == (7, 16, 8)
    gif = Image.open(io.BytesIO(video.encoded_image_string))
    assert gif.format == "GIF" and gif.n_frames == 5


def test_confusion_matrix_counts_true_rows_and_predicted_columns() -> None:
    counts = confusion_matrix(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]), 3)
    assert counts.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    picture = confusion_image(counts, cell=10)
    assert picture.shape == (30, 30, 3) and picture.dtype == np.uint8
    assert picture[5, 5].mean() < picture[5, 15].mean()  # a full cell is darker than an empty one
