"""Still images for the StyleGAN2 prior: image DataModules and a batch adapter.

The prior trains on single images "b 3 h w" in [-1, 1]. `images_from_batch` accepts what our
DataModules yield: a plain tensor, a dict with "image" (ImageFolderDataModule), or the
landscape DataModule's clip batches with "frames" "b t 3 h w".
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torchvision.transforms.functional as TF
from einops import rearrange
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from sgvideo.pixels import IMAGE_SUFFIXES


def list_images(root: str | os.PathLike) -> list[Path]:
    """Image files under `root` (recursively, sorted); a clear error when there are none."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found under {root}")
    return paths


class ImageFolder(Dataset):
    """Images resized (shorter side) and centre-cropped to `size`: {"image": "3 size size"},
    mirrored with probability 1/2 when `hflip`."""

    def __init__(self, paths: list[Path], size: int, hflip: bool = False) -> None:
        self.paths = paths
        self.size = size
        self.hflip = hflip

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        with Image.open(self.paths[index]) as image:
            image = TF.center_crop(TF.resize(image.convert("RGB"), self.size), self.size)
        tensor = TF.to_tensor(image) * 2.0 - 1.0
        if self.hflip and torch.rand(()).item() < 0.5:
            tensor = tensor.flip(-1)
        return {"image": tensor}


class ImageFolderDataModule(L.LightningDataModule):
    """Every image under `root` (any sub-folders), as batches {"image": "b 3 h w"} in [-1, 1],
    randomly mirrored when `hflip`."""

    def __init__(
        self,
        root: str,
        image_size: int = 256,
        batch_size: int = 16,
        num_workers: int = 4,
        hflip: bool = True,
    ) -> None:
        super().__init__()
        self.root = root
        self.image_size = image_size
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.hflip = hflip
        self.dataset: ImageFolder | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.dataset is None:
            paths = list_images(self.root)
            if len(paths) < self.batch_size:
                raise ValueError(
                    f"{self.root} has {len(paths)} images, fewer than batch_size={self.batch_size}"
                )
            self.dataset = ImageFolder(paths, self.image_size, self.hflip)

    def train_dataloader(self) -> DataLoader:
        self.setup()
        return DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )


def images_from_batch(batch: Any, frames_per_clip: int | None = None) -> Tensor:
    """Real images "n 3 h w" from a batch of images or of clips.

    Accepts a tensor "b 3 h w", a (tensor, ...) tuple, a dict with "image" "b 3 h w", or a dict
    with "frames" "b t 3 h w": all t frames of each clip (frames_per_clip=None) or that many
    distinct random frames per clip.
    """
    if isinstance(batch, (list, tuple)) and batch:
        batch = batch[0]
    if isinstance(batch, dict):
        if "image" in batch:
            images = batch["image"]
        elif "frames" in batch:
            images = _frames_to_images(batch["frames"], frames_per_clip)
        else:
            raise ValueError(f"batch has neither 'image' nor 'frames' (keys: {sorted(batch)})")
    else:
        images = batch
    if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"expected images 'b 3 h w', got {shape}")
    return images


def _frames_to_images(frames: Tensor, frames_per_clip: int | None) -> Tensor:
    if frames.ndim != 5:
        raise ValueError(f"expected frames 'b t 3 h w', got {tuple(frames.shape)}")
    if frames_per_clip is not None:
        b, t = frames.shape[:2]
        if not 0 < frames_per_clip <= t:
            raise ValueError(f"frames_per_clip must be in [1, {t}], got {frames_per_clip}")
        picks = torch.rand(b, t, device=frames.device).argsort(dim=1)[:, :frames_per_clip]
        frames = frames[torch.arange(b, device=frames.device)[:, None], picks]
    return rearrange(frames, "b t c h w -> (b t) c h w")
