"""Stage 0: train an audio encoder into CLIP's joint image-text space (frozen CLIP).

Training samples are single audio windows (each clip's `t` windows, see `flatten_windows`), the
same unit the inversion stage later feeds the encoder. Losses, each weighted in the config:
- text: symmetric InfoNCE of the window against the CLIP text embeddings of all category
  prompts ("a photo of {category}"): cross-entropy over the categories (every prompt is a
  class), plus prompt -> windows over the batch with all windows of that category positive;
- augment: symmetric InfoNCE between a window and an augmented copy of it (random gain,
  circular time shift and added noise on the waveform, then log-mel);
- image: symmetric InfoNCE between a window and the CLIP image embedding of its clip's frame;
  windows of the same clip count as positives of each other's frames.
All share one learnable temperature (CLIP's logit scale, capped at 100). Validation logs the
zero-shot top-1 accuracy of windows against the category prompts (`val/zero_shot_acc`).
"""

from __future__ import annotations

import lightning as L
import torch

from sgvideo.audio import MelSettings, window_length
from sgvideo.lit import visuals
from sgvideo.lit.checkpointing import StageCheckpointMixin
from sgvideo.lit.mixins import FrozenEvalMixin, RngStateMixin
from sgvideo.lit.windows import Windows, flatten_windows
from sgvideo.losses import LogitScale, class_info_nce, class_logits, symmetric_info_nce
from sgvideo.models.audio_encoder import AudioEncoder
from sgvideo.models.clip_model import (
    clip_embed_dim,
    clip_image_embed,
    clip_text_embed,
    load_clip,
    prompts_for,
)


def augment_waveform(
    wave: torch.Tensor,
    gain_db: float = 6.0,
    max_shift: float = 0.1,
    snr_db: tuple[float, float] = (10.0, 30.0),
) -> torch.Tensor:
    """Random gain (+-gain_db), circular shift (up to max_shift of the length) and white noise
    at a random SNR in `snr_db` (relative to each window's RMS): "n samples" -> "n samples"."""
    n, length = wave.shape

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return (lo + (hi - lo) * torch.rand(n, 1)).to(wave.device)

    wave = wave * 10.0 ** (uniform(-gain_db, gain_db) / 20.0)
    limit = int(max_shift * length)
    shift = torch.randint(-limit, limit + 1, (n, 1)).to(wave.device)
    index = (torch.arange(length, device=wave.device) - shift) % length
    wave = wave.gather(1, index)
    rms = wave.square().mean(dim=1, keepdim=True).sqrt()
    noise = torch.randn(n, length).to(wave.device)
    return wave + noise * rms * 10.0 ** (-uniform(*snr_db) / 20.0)


class AudioCLIPAlignment(RngStateMixin, FrozenEvalMixin, StageCheckpointMixin, L.LightningModule):
    """Audio encoder aligned with a frozen CLIP by contrastive losses (see the module doc).

    Args:
        categories: category names, in label order (the CLI links them from the data).
        clip: CLIP weights: a local ViT-B-32.pt path, "tiny" (random, tests) or None to read
            $SGVIDEO_CLIP_WEIGHTS.
        embed_dim: expected CLIP embedding size (checked); the encoder always uses CLIP's.
        mel: sample rate and log-mel settings (linked from the data).
        window_seconds: length of one audio window (linked from the data; checked).
        prompt_template: text prompt of a category, "{}" is replaced by its name.
        text_weight, augment_weight, image_weight: loss weights (0 switches a term off).
        temperature: initial softmax temperature (logit scale = 1 / temperature).
        windows_per_clip: train on this many random windows per clip (None: all).
        augment_gain_db, augment_shift, augment_snr_db: waveform augmentation ranges.
        lr, weight_decay, gamma: AdamW and per-epoch StepLR decay.
    """

    stage = "align"
    frozen_modules = ("clip", "mel")

    def __init__(
        self,
        categories: list[str] | None = None,
        clip: str | None = None,
        embed_dim: int | None = None,
        mel: MelSettings = MelSettings(),
        window_seconds: float = 1 / 3,
        prompt_template: str = "a photo of {}",
        text_weight: float = 1.0,
        augment_weight: float = 1.0,
        image_weight: float = 1.0,
        temperature: float = 0.07,
        windows_per_clip: int | None = None,
        augment_gain_db: float = 6.0,
        augment_shift: float = 0.1,
        augment_snr_db: tuple[float, float] = (10.0, 30.0),
        lr: float = 1e-4,
        weight_decay: float = 0.01,
        gamma: float = 0.98,
    ) -> None:
        super().__init__()
        if not categories:
            raise ValueError("categories are required (the CLI links them from the data)")
        self.mel_settings = MelSettings.of(mel)
        self.save_hyperparameters(ignore=["mel"])
        self.hparams["mel"] = self.mel_settings.as_dict()
        self.clip = load_clip(clip)
        dim = clip_embed_dim(self.clip)
        if embed_dim is not None and embed_dim != dim:
            raise ValueError(f"embed_dim {embed_dim} does not match the CLIP model's {dim}")
        self.mel = self.mel_settings.log_mel()
        self.audio_encoder = AudioEncoder(embed_dim=dim)
        self.logit_scale = LogitScale(1.0 / temperature)
        prompts = prompts_for(categories, prompt_template)
        self.register_buffer("text_embeds", clip_text_embed(self.clip, prompts), persistent=False)
        self.window_samples = window_length(self.mel_settings.sample_rate, window_seconds)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio windows "n samples" -> unit-length embeddings "n d" in CLIP space."""
        return self.audio_encoder(self.mel(audio), normalize=True)

    def _windows(self, batch: dict, windows_per_clip: int | None) -> Windows:
        return flatten_windows(batch, windows_per_clip, self.window_samples)

    def _losses(self, windows: Windows, augment: bool) -> dict[str, torch.Tensor]:
        hp = self.hparams
        scale = self.logit_scale()
        mel = self.mel(windows.audio)
        if augment and hp.augment_weight > 0:
            noisy = augment_waveform(
                windows.audio, hp.augment_gain_db, hp.augment_shift, tuple(hp.augment_snr_db)
            )
            audio, audio_aug = self.audio_encoder(torch.cat([mel, self.mel(noisy)])).chunk(2)
        else:
            audio, audio_aug = self.audio_encoder(mel), None
        losses = {"text": class_info_nce(audio, self.text_embeds, windows.category, scale)}
        if audio_aug is not None:
            losses["augment"] = symmetric_info_nce(audio, audio_aug, scale)
        if hp.image_weight > 0:
            with torch.no_grad():
                image = clip_image_embed(self.clip, windows.frames)
            losses["image"] = symmetric_info_nce(audio, image, scale, labels=windows.clip)
        predicted = class_logits(audio, self.text_embeds, 1.0).argmax(dim=1)
        self._predicted = (predicted.detach(), windows.category.detach())
        zero_shot = predicted == windows.category
        losses["zero_shot_acc"] = zero_shot.float().mean()
        return losses

    def _total(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        hp = self.hparams
        weights = {"text": hp.text_weight, "augment": hp.augment_weight, "image": hp.image_weight}
        return sum(weights[name] * losses[name] for name in weights if name in losses)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        windows = self._windows(batch, self.hparams.windows_per_clip)
        losses = self._losses(windows, augment=True)
        losses["loss"] = self._total(losses)
        losses["logit_scale"] = self.logit_scale().detach()
        n = windows.audio.shape[0]
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, batch_size=n, prog_bar=False)
        return losses["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        windows = self._windows(batch, None)
        losses = self._losses(windows, augment=False)
        losses["loss"] = self._total(losses)
        n = windows.audio.shape[0]
        self.log_dict({f"val/{k}": v for k, v in losses.items()}, batch_size=n, sync_dist=True)
        counts = visuals.confusion_matrix(*self._predicted, len(self.text_embeds))
        self._confusion = counts if batch_idx == 0 else self._confusion + counts

    def on_validation_epoch_end(self) -> None:
        """The zero-shot confusion matrix (this rank's windows; rows: true categories) as an
        image for TensorBoard."""
        if self.trainer.is_global_zero and getattr(self, "_confusion", None) is not None:
            picture = visuals.confusion_image(self._confusion)
            visuals.log_image(self, "val/zero_shot_confusion", picture)

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = torch.optim.AdamW(
            [
                {"params": self.audio_encoder.parameters()},
                {"params": self.logit_scale.parameters(), "weight_decay": 0.0},
            ],
            lr=hp.lr,
            weight_decay=hp.weight_decay,
        )
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=hp.gamma)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
        }
