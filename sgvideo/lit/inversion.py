"""Stage 1: sound inversion, training an encoder from one audio window to a W+ latent.

w_a = w_avg + E(mel) is rendered by the frozen StyleGAN2 generator and judged in the frozen
CLIP space. Losses, each weighted in the config (the paper's objective is audio + text +
latent; frame and adversarial are ours, off by default):
- audio: 1 - cos(CLIP_img(G(w_a)), A(audio)), A the frozen stage-0 audio encoder;
- text: 1 - cos(CLIP_img(G(w_a)), CLIP_txt(category prompt));
- frame: 1 - cos(CLIP_img(G(w_a)), CLIP_img(the window's real frame));
- layout: mean square difference of G(w_a) and the window's real frame, both area-averaged
  to `layout_size` x `layout_size` pixels: the scene's colour layout, which the sound decides
  (a small CLIP alone can be satisfied by off-manifold textures);
- latent: mean of (w_a - w_avg)^2 (a mean square, like the authors' MSE regulariser);
- adv: least-squares GAN loss of an image discriminator trained beside the encoder.
Training samples are single windows: all `t` windows of each clip (or `windows_per_clip`
random ones), each paired with its frame. Only the encoder (and the discriminator) train;
generator, CLIP and audio encoder are rebuilt from their paths and left out of checkpoints.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only
from torch.nn import functional as F

from sgvideo.audio import MelSettings, window_length
from sgvideo.checkpoints.stylegan2 import load_generator
from sgvideo.lit import visuals
from sgvideo.lit.checkpointing import StageCheckpointMixin
from sgvideo.lit.mixins import FrozenEvalMixin, RngStateMixin
from sgvideo.lit.windows import Windows, flatten_windows
from sgvideo.losses import cosine_distance, layout_distance, lsgan_d_loss, lsgan_g_loss
from sgvideo.models.audio_encoder import load_audio_encoder
from sgvideo.models.clip_model import (
    clip_embed_dim,
    clip_image_embed,
    clip_text_embed,
    load_clip,
    prompts_for,
)
from sgvideo.models.discriminators import ImageDiscriminator
from sgvideo.models.inversion_encoder import ENCODER_CONFIG_KEY, SoundInversionEncoder

LOSS_NAMES = ("audio", "text", "frame", "layout", "latent", "adv")


class SoundInversion(RngStateMixin, FrozenEvalMixin, StageCheckpointMixin, L.LightningModule):
    """Sound inversion encoder trained against frozen StyleGAN2 + CLIP (see the module doc).

    Args:
        generator_path: rosinality StyleGAN2 checkpoint (its `g_ema` is used, frozen).
        audio_encoder_path: stage-0 `align` checkpoint or the authors' sound-CLIP
            resnet18.pth; may be None only when audio_weight is 0.
        clip: CLIP weights: a local ViT-B-32.pt path, "tiny" or None ($SGVIDEO_CLIP_WEIGHTS).
            Use the CLIP the audio encoder was aligned with.
        categories: category names in label order (the CLI links them from the data).
        mel, window_seconds: sample rate, log-mel settings and window length (linked from the
            data).
        prompt_template: text prompt of a category, "{}" is replaced by its name.
        audio_weight, text_weight, frame_weight, layout_weight, latent_weight, adv_weight: loss
            weights; a positive adv_weight adds an ImageDiscriminator (and manual
            optimisation).
        layout_size: side of the thumbnails the layout term compares.
        lr, betas, weight_decay, gamma: AdamW (encoder and discriminator), per-epoch StepLR.
        windows_per_clip: train on this many random windows per clip (None: all).
        noise_mode: the generator's noise ("const", "random" or "none").
        log_images_every_n_steps: write a real | generated grid (PNG under the run's
            `images/`, and to loggers that take images) every N training steps; 0: never.
        num_log_images: rows of that grid.
        encoder_kwargs: SoundInversionEncoder options (channels, blocks_per_stage).
        discriminator_kwargs: ImageDiscriminator options (channels, max_channels).
    """

    stage = "inversion"
    frozen_modules = ("generator", "clip", "audio_encoder", "mel")

    def __init__(
        self,
        generator_path: str,
        audio_encoder_path: str | None = None,
        clip: str | None = None,
        categories: list[str] | None = None,
        mel: MelSettings = MelSettings(),
        window_seconds: float = 1 / 3,
        prompt_template: str = "a photo of {}",
        audio_weight: float = 1.0,
        text_weight: float = 1.0,
        frame_weight: float = 0.0,
        layout_weight: float = 0.0,
        layout_size: int = 8,
        latent_weight: float = 1.0,
        adv_weight: float = 0.0,
        lr: float = 5e-4,
        betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 0.01,
        gamma: float = 0.98,
        windows_per_clip: int | None = None,
        noise_mode: str = "const",
        log_images_every_n_steps: int = 100,
        num_log_images: int = 4,
        encoder_kwargs: dict[str, Any] | None = None,
        discriminator_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if text_weight > 0 and not categories:
            raise ValueError("categories are required for the text loss (linked from the data)")
        if audio_weight > 0 and not audio_encoder_path:
            raise ValueError("audio_weight > 0 needs audio_encoder_path (a stage-0 checkpoint)")
        self.mel_settings = MelSettings.of(mel)
        self.save_hyperparameters(ignore=["mel"])
        self.hparams["mel"] = self.mel_settings.as_dict()
        self.generator = load_generator(generator_path)
        self.clip = load_clip(clip)
        self.audio_encoder = load_audio_encoder(audio_encoder_path) if audio_weight > 0 else None
        dim = clip_embed_dim(self.clip)
        if self.audio_encoder is not None and self.audio_encoder.embed_dim != dim:
            raise ValueError(
                f"the audio encoder embeds into {self.audio_encoder.embed_dim} dims but the CLIP "
                f"model into {dim}: align the audio encoder with this CLIP (stage 0)"
            )
        self.mel = self.mel_settings.log_mel()
        g = self.generator
        self.encoder = SoundInversionEncoder(
            n_latent=g.n_latent,
            style_dim=g.style_dim,
            n_mels=self.mel_settings.n_mels,
            **(encoder_kwargs or {}),
        )
        self.discriminator = (
            ImageDiscriminator(g.size, **(discriminator_kwargs or {})) if adv_weight > 0 else None
        )
        self.automatic_optimization = self.discriminator is None
        text = (
            clip_text_embed(self.clip, prompts_for(categories, prompt_template))
            if categories
            else None
        )
        self.register_buffer("text_embeds", text, persistent=False)
        self.window_samples = window_length(self.mel_settings.sample_rate, window_seconds)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Log-mel windows "n n_mels time" -> W+ latents "n n_latent style_dim"."""
        return self.encoder.sound_latents(mel, self.generator.w_avg)

    def _windows(self, batch: dict, windows_per_clip: int | None) -> Windows:
        return flatten_windows(batch, windows_per_clip, self.window_samples)

    def _real_frames(self, windows: Windows) -> torch.Tensor:
        """Real frames at the generator's resolution."""
        size = self.generator.size
        frames = windows.frames
        if frames.shape[-1] != size or frames.shape[-2] != size:
            frames = F.interpolate(frames, size=(size, size), mode="bilinear", antialias=True)
        return frames

    def _losses(self, windows: Windows) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Generated images "n 3 size size" and the encoder's unweighted loss terms."""
        hp = self.hparams
        mel = self.mel(windows.audio)
        offset = self.encoder(mel)
        fake = self.generator.synthesis(self.generator.w_avg + offset, noise_mode=hp.noise_mode)
        image = clip_image_embed(self.clip, fake)
        losses = {"latent": offset.square().mean()}
        if self.audio_encoder is not None:
            with torch.no_grad():
                audio = self.audio_encoder(mel)
            losses["audio"] = cosine_distance(image, audio).mean()
        if self.text_embeds is not None and hp.text_weight > 0:
            losses["text"] = cosine_distance(image, self.text_embeds[windows.category]).mean()
        if hp.frame_weight > 0:
            with torch.no_grad():
                real = clip_image_embed(self.clip, windows.frames)
            losses["frame"] = cosine_distance(image, real).mean()
        if hp.layout_weight > 0:
            losses["layout"] = layout_distance(fake, self._real_frames(windows), hp.layout_size)
        if self.discriminator is not None:
            losses["adv"] = lsgan_g_loss(self.discriminator(fake))
        return fake, losses

    def _total(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        weights = {name: self.hparams[f"{name}_weight"] for name in LOSS_NAMES}
        return sum(weights[name] * value for name, value in losses.items())

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor | None:
        windows = self._windows(batch, self.hparams.windows_per_clip)
        step = self.global_step
        fake, losses = self._losses(windows)
        total = self._total(losses)
        every = self.hparams.log_images_every_n_steps
        if every > 0 and step % every == 0:
            self._log_images(self._real_frames(windows), fake.detach(), step)
        if self.discriminator is not None:
            losses["d"] = self._manual_step(total, self._real_frames(windows), fake)
        losses["loss"] = total
        n = windows.audio.shape[0]
        self.log_dict({f"train/{k}": v.detach() for k, v in losses.items()}, batch_size=n)
        return total if self.automatic_optimization else None

    def _manual_step(self, total: torch.Tensor, real: torch.Tensor, fake: torch.Tensor):
        """One encoder step, then one discriminator step (LSGAN); returns the D loss."""
        opt_e, opt_d = self.optimizers()
        opt_e.zero_grad()
        self.manual_backward(total)
        opt_e.step()
        d_loss = lsgan_d_loss(self.discriminator(real), self.discriminator(fake.detach()))
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        opt_d.step()
        return d_loss

    def on_train_epoch_end(self) -> None:
        if not self.automatic_optimization:
            self.lr_schedulers().step()

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        windows = self._windows(batch, None)
        _, losses = self._losses(windows)
        losses["loss"] = self._total(losses)
        n = windows.audio.shape[0]
        self.log_dict({f"val/{k}": v for k, v in losses.items()}, batch_size=n, sync_dist=True)

    def configure_optimizers(self):
        hp = self.hparams
        adamw = dict(lr=hp.lr, betas=tuple(hp.betas), weight_decay=hp.weight_decay)
        optimizer = torch.optim.AdamW(self.encoder.parameters(), **adamw)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=hp.gamma)
        if self.discriminator is None:
            return {
                "optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
            }
        opt_d = torch.optim.AdamW(self.discriminator.parameters(), **adamw)
        return [optimizer, opt_d], [scheduler]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint[ENCODER_CONFIG_KEY] = self.encoder.config

    @rank_zero_only
    def _log_images(self, real: torch.Tensor, fake: torch.Tensor, step: int) -> None:
        """A grid with one row per window: real frame | G(w_a), to PNG and image loggers."""
        k = min(self.hparams.num_log_images, real.shape[0])
        pairs = torch.stack([real[:k], fake[:k]], dim=1).flatten(0, 1)
        path = visuals.run_folder(self, "images") / f"step_{step:07d}.png"
        visuals.save_grid(self, pairs, path, "train/images", nrow=2)
