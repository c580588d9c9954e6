"""Train a StyleGAN2 prior (the generator every later stage builds on) on still images.

The recipe is rosinality's train.py, whose checkpoint format we export: non-saturating
logistic loss, lazy R1 (every `r1_every` steps) and path-length (every `pl_every` steps)
regularisation with the Adam rates scaled for the extra steps, style mixing, and an EMA
copy `g_ema` of the generator, which is what gets exported.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor

from sgvideo.checkpoints.stylegan2 import save_rosinality_checkpoint
from sgvideo.data.images import images_from_batch
from sgvideo.lit import visuals
from sgvideo.lit.checkpointing import StageCheckpointMixin
from sgvideo.lit.mixins import RngStateMixin
from sgvideo.losses_gan import (
    d_logistic_loss,
    ema_beta,
    ema_update,
    g_nonsaturating_loss,
    lazy_adam_hparams,
    path_length_penalty,
    r1_penalty,
    sample_w_plus,
)
from sgvideo.models.stylegan2 import Discriminator, Generator

SAMPLE_SEED = 1234


class StyleGAN2Prior(RngStateMixin, StageCheckpointMixin, L.LightningModule):
    """StyleGAN2 GAN training with manual optimisation; `export` writes a rosinality .pt.

    Batches: images "b 3 h w" (a tensor or {"image": ...}) or clips {"frames": "b t 3 h w"}
    (all frames, or `frames_per_clip` random ones per clip), in [-1, 1] at `size` px.
    One training step is one iteration of rosinality's loop; `trainer.global_step` counts
    these iterations (only the generator's main update is reported to Lightning as a step), so
    `max_steps` is the number of iterations. Every `sample_every` steps, a grid of `g_ema`
    images from fixed latents goes to `<log_dir>/samples/<step>.png`. Checkpoints hold the
    random generators' states, so a run resumed at an epoch boundary continues exactly.
    """

    stage = "prior"
    frozen_modules = ()

    def __init__(
        self,
        size: int = 256,
        style_dim: int = 512,
        n_mlp: int = 8,
        channel_multiplier: int = 2,
        channel_max: int = 512,
        lr_mlp: float = 0.01,
        lr: float = 0.002,
        r1_gamma: float = 10.0,
        r1_every: int = 16,
        mbstd_group: int = 4,
        pl_weight: float = 2.0,
        pl_every: int = 4,
        pl_batch_shrink: int = 2,
        pl_decay: float = 0.01,
        mixing_prob: float = 0.9,
        ema_half_life_steps: float = 312.5,
        ema_rampup: float | None = None,
        frames_per_clip: int | None = None,
        sample_every: int = 500,
        sample_count: int = 64,
        export_path: str | None = None,
    ) -> None:
        """`ema_half_life_steps` 312.5 is rosinality's decay (10k images at batch 32); with
        `ema_rampup` r the half-life is at most r * step (StyleGAN2-ADA uses 0.05), which
        helps short runs. `pl_weight` 0 or `r1_gamma` 0 turn those regularisers off. `lr_mlp`
        is the mapping network's learning-rate multiplier (rosinality's 0.01 suits long runs;
        a short run's mapping barely moves with it); the export is in rosinality's convention
        whatever it is. `mbstd_group` is the discriminator's minibatch-stddev group: the whole
        batch (e.g. 16) lets it see that a batch lacks a scene, rosinality's 4 hardly does."""
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.g = Generator(
            size,
            style_dim=style_dim,
            n_mlp=n_mlp,
            channel_multiplier=channel_multiplier,
            channel_max=channel_max,
            lr_mlp=lr_mlp,
        )
        self.d = Discriminator(
            size,
            channel_multiplier=channel_multiplier,
            channel_max=channel_max,
            stddev_group=mbstd_group,
        )
        self.g_ema = copy.deepcopy(self.g).requires_grad_(False)
        self.register_buffer("mean_path_length", torch.zeros(()))
        seeded = torch.Generator().manual_seed(SAMPLE_SEED)
        self.register_buffer("sample_z", torch.randn(sample_count, style_dim, generator=seeded))
        self.samples_dir = Path("samples")  # under the run's log dir once fitting starts

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        hp = self.hparams
        g_lr, g_betas = lazy_adam_hparams(hp.lr, (0.0, 0.99), hp.pl_every)
        d_lr, d_betas = lazy_adam_hparams(hp.lr, (0.0, 0.99), hp.r1_every)
        return [
            torch.optim.Adam(self.g.parameters(), lr=g_lr, betas=g_betas),
            torch.optim.Adam(self.d.parameters(), lr=d_lr, betas=d_betas),
        ]

    def on_fit_start(self) -> None:
        if getattr(self.trainer.precision_plugin, "scaler", None) is not None:
            raise ValueError(
                "StyleGAN2Prior does not support loss-scaled fp16 ('16-mixed'): "
                "use trainer.precision 32 or bf16-mixed"
            )
        # `trainer.log_dir` is a collective under DDP: ask on every rank, here, not in rank 0 code
        self.samples_dir = Path(self.trainer.log_dir or self.trainer.default_root_dir) / "samples"

    def _w_plus(self, batch: int) -> Tensor:
        """Training latents "b n_latent style_dim" of the trained generator, style-mixed."""
        g = self.g
        return sample_w_plus(
            g.mapping, batch, g.style_dim, g.n_latent, self.hparams.mixing_prob, self.device
        )

    def _real_images(self, batch: Any) -> Tensor:
        images = images_from_batch(batch, self.hparams.frames_per_clip)
        if images.shape[-2:] != (self.g.size, self.g.size):
            raise ValueError(
                f"real images are {images.shape[-2]}x{images.shape[-1]} but the prior generates "
                f"{self.g.size}x{self.g.size}: set the data's image_size to {self.g.size}"
            )
        # the discriminator's minibatch-stddev groups need a multiple of its group size
        group = min(images.shape[0], self.d.stddev_group)
        return images[: images.shape[0] - images.shape[0] % group]

    def training_step(self, batch: Any, batch_idx: int) -> None:
        hp = self.hparams
        real = self._real_images(batch)
        step = self.global_step
        opt_g, opt_d = self.optimizers()

        self.g.requires_grad_(False)
        self.d.requires_grad_(True)
        with torch.no_grad():
            fake = self.g.synthesis(self._w_plus(real.shape[0]), noise_mode="random")
        d_loss = d_logistic_loss(self.d(real), self.d(fake))
        self._update(opt_d, d_loss)
        logs = {"d_loss": d_loss.detach()}
        if hp.r1_gamma > 0 and step % hp.r1_every == 0:
            real_r1 = real.detach().requires_grad_(True)
            real_logits = self.d(real_r1)
            r1 = r1_penalty(real_logits, real_r1)
            # `0 * logits` keeps every D output in the graph, which DDP's reducer expects.
            self._update(opt_d, hp.r1_gamma / 2 * r1 * hp.r1_every + 0 * real_logits[0, 0])
            logs["r1"] = r1.detach()

        self.g.requires_grad_(True)
        self.d.requires_grad_(False)
        g_loss = g_nonsaturating_loss(
            self.d(self.g.synthesis(self._w_plus(real.shape[0]), noise_mode="random"))
        )
        self._update(opt_g, g_loss, counted=True)
        logs["g_loss"] = g_loss.detach()
        if hp.pl_weight > 0 and step % hp.pl_every == 0:
            w_plus = self._w_plus(max(1, real.shape[0] // hp.pl_batch_shrink))
            images = self.g.synthesis(w_plus, noise_mode="random")
            penalty, new_mean, _ = path_length_penalty(
                images, w_plus, self.mean_path_length, hp.pl_decay
            )
            self.mean_path_length.copy_(new_mean)
            self._update(opt_g, hp.pl_weight * hp.pl_every * penalty + 0 * images[0, 0, 0, 0])
            logs["path_penalty"] = penalty.detach()
            logs["mean_path_length"] = new_mean
        self.d.requires_grad_(True)

        ema_update(self.g_ema, self.g, ema_beta(hp.ema_half_life_steps, step, hp.ema_rampup))
        self.log_dict({f"train/{k}": v for k, v in logs.items()}, batch_size=real.shape[0])
        self.log("d_loss", logs["d_loss"], prog_bar=True, logger=False)
        self.log("g_loss", logs["g_loss"], prog_bar=True, logger=False)

    def _update(self, optimizer, loss: Tensor, counted: bool = False) -> None:
        """One optimiser step on `loss`.

        Only the generator's main step goes through Lightning's optimizer wrapper, which counts
        `global_step`; the others step the wrapped torch optimizer directly so that a step is an
        iteration (this is also why loss-scaled fp16 is refused in on_fit_start).
        """
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if counted:
            optimizer.step()
        else:
            optimizer.optimizer.step()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        every = self.hparams.sample_every
        if every and self.trainer.is_global_zero and (self.global_step - 1) % every == 0:
            self.save_samples(self.samples_dir / f"{self.global_step - 1:06d}.png")

    def on_train_end(self) -> None:
        if not self.trainer.is_global_zero:
            return
        if self.hparams.sample_every:
            self.save_samples(self.samples_dir / "final.png")
        if self.hparams.export_path:
            self.export(self.hparams.export_path)

    @torch.no_grad()
    def sample(self, z: Tensor | None = None) -> Tensor:
        """`g_ema` images "b 3 size size" from z "b style_dim" (default: the fixed sample z's)."""
        z = self.sample_z if z is None else z
        w_plus = self.g_ema.mapping(z)[:, None].expand(-1, self.g_ema.n_latent, -1)
        return self.g_ema.synthesis(w_plus, noise_mode="const")

    def save_samples(self, path: str | Path) -> Path:
        """Write a grid PNG of `sample()` (`visuals.save_grid`), about square."""
        images = self.sample()
        nrow = max(1, int(math.ceil(math.sqrt(images.shape[0]))))
        return visuals.save_grid(self, images, path, "samples", nrow=nrow)

    @torch.no_grad()
    def export(self, path: str | Path) -> Path:
        """Write `g_ema`, `g`, `d` and `latent_avg` (g_ema's mean W) as a rosinality .pt file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_rosinality_checkpoint(
            path, g_ema=self.g_ema, g=self.g, d=self.d, latent_avg=self.g_ema.mean_latent()
        )
        return path
