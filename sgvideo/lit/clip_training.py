"""Train a CLIP on the dataset itself: (frame, caption) pairs, captions from category templates.

Each training item gives `frames_per_window` random frames of its window, lightly augmented
(random crop, mirror, brightness and contrast). Each frame gets a caption from a random
template of its category ("a photo of {}", "{} sounds", ...). The loss is CLIP's symmetric
InfoNCE between the frames and the captions of the batch, with CLIP's own learnable
temperature (its `logit_scale`, capped at 100, so the exported file carries it). Frames of
the same category count as positives of each other's captions: the captions mean the same.

The model is a new small `clip.model.CLIP` (`architecture`) or a CLIP file to fine-tune
(`init_from`, e.g. ViT-B-32.pt). Validation logs the zero-shot accuracy of every frame of the
held-out windows against the category prompts (`val/zero_shot_acc`); at the end of fitting the
model is written in OpenAI's layout to `export_path`, which every later stage takes as `clip`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.nn import functional as F

from sgvideo.data.images import images_from_batch
from sgvideo.lit.checkpointing import StageCheckpointMixin
from sgvideo.lit.mixins import RngStateMixin
from sgvideo.losses import symmetric_info_nce
from sgvideo.models.clip_model import (
    SMALL_CLIP,
    build_clip,
    clip_image_embed,
    clip_tokens,
    load_clip,
    prompts_for,
    save_clip,
    zero_shot_accuracy,
)

CAPTION_TEMPLATES = (
    "a photo of {}",
    "a video of {}",
    "a frame of a video of {}",
    "{} sounds",
    "the sound of {}",
    "a landscape with {}",
    "a picture of {}",
    "{}",
)
# CLIP's "logit_scale" may not exceed log(100), as in OpenAI's training.
MAX_LOG_SCALE = math.log(100.0)


def augment_images(
    images: torch.Tensor,
    crop_scale: tuple[float, float] = (0.6, 1.0),
    mirror: bool = True,
    jitter: float = 0.1,
) -> torch.Tensor:
    """Per image: a random square crop covering a `crop_scale` share of the area, resized back
    (an affine resampling), a mirror with probability 1/2, and brightness and contrast changed
    by up to `jitter` (in [-1, 1] units and as a factor): "n 3 h w" -> "n 3 h w" in [-1, 1]."""
    n = images.shape[0]

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, device=images.device)

    side = uniform(*crop_scale).sqrt()
    flip = torch.where(torch.rand(n, device=images.device) < 0.5, -1.0, 1.0) if mirror else 1.0
    theta = torch.zeros(n, 2, 3, device=images.device)
    theta[:, 0, 0] = side * flip
    theta[:, 1, 1] = side
    theta[:, 0, 2] = (1 - side) * uniform(-1.0, 1.0)
    theta[:, 1, 2] = (1 - side) * uniform(-1.0, 1.0)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    images = F.grid_sample(
        images, grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    contrast = uniform(1 - jitter, 1 + jitter).view(n, 1, 1, 1)
    brightness = uniform(-jitter, jitter).view(n, 1, 1, 1)
    return ((images - mean) * contrast + mean + brightness).clamp(-1.0, 1.0)


def labelled_frames(
    batch: dict[str, Any], frames_per_window: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames "n 3 h w" of a batch (`images_from_batch`) and each one's category "n"."""
    images = images_from_batch(batch, frames_per_window)
    category = batch["category"]
    return images, category.repeat_interleave(images.shape[0] // category.shape[0])


class CLIPTraining(RngStateMixin, StageCheckpointMixin, L.LightningModule):
    """A CLIP trained contrastively on frames and category captions (see the module doc).

    Args:
        categories: category names, in label order (the CLI links them from the data).
        init_from: a CLIP file (OpenAI's ViT-B-32.pt, or a file this stage exported) to
            fine-tune; None trains a new CLIP built from `architecture`.
        architecture: `build_clip` arguments of a new CLIP (None: SMALL_CLIP); only without
            `init_from`.
        templates: caption templates, "{}" is replaced by the category name.
        zero_shot_template: the prompt of a category in the zero-shot accuracy; the later
            stages' `prompt_template`.
        frames_per_window: random frames taken from each training window.
        crop_scale, mirror, jitter: augmentation (see `augment_images`); `augment` False: none.
        lr, weight_decay, warmup_steps: AdamW (CLIP's betas 0.9/0.98 and eps 1e-6; no decay on
            gains, biases, embeddings and the temperature) after a linear warmup.
        export_path: where to write the trained CLIP in OpenAI's layout at the end of fitting
            (its folder is created); None: only the Lightning checkpoints.
    """

    stage = "clip"
    frozen_modules = ()

    def __init__(
        self,
        categories: list[str] | None = None,
        init_from: str | None = None,
        architecture: dict[str, Any] | None = None,
        templates: Sequence[str] = CAPTION_TEMPLATES,
        zero_shot_template: str = "a photo of {}",
        frames_per_window: int = 1,
        augment: bool = True,
        crop_scale: tuple[float, float] = (0.6, 1.0),
        mirror: bool = True,
        jitter: float = 0.1,
        lr: float = 5e-4,
        weight_decay: float = 0.1,
        warmup_steps: int = 50,
        export_path: str | None = None,
    ) -> None:
        super().__init__()
        if not categories:
            raise ValueError("categories are required (the CLI links them from the data)")
        if init_from and architecture:
            raise ValueError("give init_from (a CLIP to fine-tune) or architecture, not both")
        if frames_per_window < 1:
            raise ValueError(f"frames_per_window must be at least 1, got {frames_per_window}")
        self.save_hyperparameters()
        if init_from:
            self.clip = load_clip(init_from).requires_grad_(True)
        else:
            self.clip = build_clip(**(architecture or SMALL_CLIP))
        captions = [caption for t in templates for caption in prompts_for(categories, t)]
        # caption of category c with template j: row j * categories + c
        self.register_buffer("caption_tokens", clip_tokens(self.clip, captions), persistent=False)

    def _caption_embeds(self, category: torch.Tensor) -> torch.Tensor:
        """A random template's caption of each category "n" -> unit text embeddings "n d"."""
        k, m = len(self.hparams.categories), len(self.hparams.templates)
        rows = torch.randint(m, category.shape, device=category.device) * k + category
        unique, index = rows.unique(return_inverse=True)
        embeds = self.clip.encode_text(self.caption_tokens[unique]).float()
        return F.normalize(embeds, dim=-1)[index]

    def _loss(self, images: torch.Tensor, category: torch.Tensor) -> torch.Tensor:
        scale = self.clip.logit_scale.clamp(max=MAX_LOG_SCALE).exp()
        image = clip_image_embed(self.clip, images)
        return symmetric_info_nce(image, self._caption_embeds(category), scale, labels=category)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        hp = self.hparams
        images, category = labelled_frames(batch, hp.frames_per_window)
        if hp.augment:
            images = augment_images(images, tuple(hp.crop_scale), hp.mirror, hp.jitter)
        loss = self._loss(images, category)
        logs = {"loss": loss, "logit_scale": self.clip.logit_scale.detach().exp()}
        self.log_dict({f"train/{k}": v for k, v in logs.items()}, batch_size=images.shape[0])
        return loss

    def _evaluate(self, batch: dict[str, Any], split: str) -> None:
        """Log the zero-shot accuracy of every frame of the batch (no random captions here)."""
        hp = self.hparams
        images, category = labelled_frames(batch, None)
        accuracy = zero_shot_accuracy(
            self.clip, images, category, hp.categories, hp.zero_shot_template
        )
        self.log(f"{split}/zero_shot_acc", accuracy, batch_size=images.shape[0], sync_dist=True)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def configure_optimizers(self):
        hp = self.hparams
        decay, no_decay = [], []
        for name, param in self.clip.named_parameters():
            plain = param.ndim < 2 or "embedding" in name or name == "logit_scale"
            (no_decay if plain else decay).append(param)
        optimizer = torch.optim.AdamW(
            [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=hp.lr,
            betas=(0.9, 0.98),
            eps=1e-6,
            weight_decay=hp.weight_decay,
            # several times faster than the default: most weights are the token embedding's
            fused=self.device.type in ("cpu", "cuda"),
        )
        warmup = max(1, hp.warmup_steps)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min(1.0, (step + 1) / warmup)
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def on_train_end(self) -> None:
        if self.trainer.is_global_zero and self.hparams.export_path:
            self.export(self.hparams.export_path)

    def export(self, path: str | Path) -> Path:
        """Write the CLIP in OpenAI's layout (`save_clip`): `load_clip(path)` reads it."""
        return save_clip(self.clip, path)
