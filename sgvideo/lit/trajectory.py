"""Stage 2: train the latent trajectory generator against image and video discriminators.

Everything pretrained is frozen: the StyleGAN2 generator, the stage-1 sound inversion encoder
(sound window -> w_a^t), the stage-0 audio encoder and CLIP (for the audio-frame loss). Only
the trajectory net and the two discriminators learn, and only they are saved in checkpoints;
the frozen parts are rebuilt from the paths in the hyper-parameters.
"""

from __future__ import annotations

from itertools import chain
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from einops import rearrange
from torch import Tensor
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.checkpoint import checkpoint

from sgvideo.audio import MelSettings, segment_for_frames
from sgvideo.checkpoints.stylegan2 import load_generator
from sgvideo.checkpoints.trajectory import TRAJECTORY_CONFIG_KEY
from sgvideo.inference.latents import clip_chosen_latents
from sgvideo.lit import visuals
from sgvideo.lit.checkpointing import StageCheckpointMixin
from sgvideo.lit.mixins import FrozenEvalMixin, RngStateMixin
from sgvideo.lit.trajectory_support import check_inversion, restarted
from sgvideo.losses import (
    cosine_distance,
    detail_distance,
    layout_distance,
    lsgan_d_loss,
    lsgan_g_loss,
    motion_matching_loss,
)
from sgvideo.models.audio_encoder import load_audio_encoder
from sgvideo.models.clip_model import (
    clip_embed_dim,
    clip_image_embed,
    load_clip,
    prompts_for,
)
from sgvideo.models.discriminators import ImageDiscriminator, VideoDiscriminator
from sgvideo.models.inversion_encoder import load_inversion_encoder
from sgvideo.models.trajectory import TrajectoryGenerator, frame_audio_features


class TrajectoryGAN(FrozenEvalMixin, RngStateMixin, StageCheckpointMixin, L.LightningModule):
    """Sound clip -> latent trajectory -> frames, judged per frame and as a clip.

    Batches are the landscape DataModule's: `frames` "b t 3 h w" in [-1, 1], `audio`
    "b t samples" (each frame's own audio segment, 1 / frame rate long), `waveform`
    "b samples" (the clip's sound) and `category` "b". The trajectory steps once per frame at
    the data's frame rate, num_frames / clip_seconds. Frame t's sound latent w_a^t is stage 1
    applied to the window of stage 1's length (its checkpoint's `window_seconds`) centred on
    the frame, cut from `waveform`; the frame's own segment gives the per-frame audio
    features (its log-mel averaged over time) that let the video move with the sound. Per
    step: the discriminators take one LSGAN step on real vs generated frames, then the
    trajectory net one step on

        adv_image * LSGAN(D_img) + adv_video * LSGAN(D_vid)
        + clip * mean_t' [1 - cos(CLIP(frame_t'), A(audio_t'))]
        + latent * |w^t - w_a^t|^2 + anchor * |w^t - w^0|^2 + smooth * |w^t - w^{t-1}|^2
        + layout * mean_t layout_distance(frame_t, real frame_t)
        + detail * mean_t detail_distance(frame_t, real frame_t)
        + motion * motion_matching_loss(generated clip, real clip)

    (squared terms are means over batch, frames and W+ entries; the CLIP term reads the frames
    t' = every `clip_frame_stride`-th frame, from a random first one each step; the layout term
    compares `layout_size`-pixel thumbnails of each frame and its paired real frame, so a flash,
    a flare or a brighter sky lands on the frame whose sound brought it; the detail term matches
    each frame's fine detail, its mean |Laplacian|, to its real frame's in log ratio, so that
    motion is not bought with grain the real scene lacks; the motion term makes the frames that
    change most in the paired real clip the ones that change most in the generated clip). The
    start latent w^0 is the first window's sound latent (`init="audio"`) or, with `init="text"`,
    the authors' CLIP choice: among `text_init_samples` truncated random latents, the one whose
    image is nearest the category prompt (chosen once per category, kept in the checkpoint). In
    training, each clip may start (with probability `restart_prob`) from another clip's start
    latent instead, practice for starts far from the sound; long videos need no such practice,
    the trajectory's pull toward the sound latent keeps them on their scene.
    `anchor_weight` None means 1 with text init and 0 with audio init. `global_step` counts
    batches (the discriminator step is not counted), so `max_steps` is a number of batches. Every
    `sample_every_n_steps` batches, the generated clip beside the real one goes to
    `<log_dir>/samples/` as a PNG strip and an mp4 with the clip's sound.

    Args:
        generator_path: rosinality StyleGAN2 checkpoint (its `g_ema`, frozen).
        inversion_path: stage-1 `inversion` checkpoint made for this generator.
        audio_encoder_path: stage-0 `align` checkpoint (or the authors' resnet18.pth).
        clip: CLIP weights: a local ViT-B-32.pt path, "tiny" or None ($SGVIDEO_CLIP_WEIGHTS).
        categories: category names in label order (linked from the data).
        mel, window_seconds, num_frames: sample rate and log-mel settings, and the clip's
            frames (linked from the data; window_seconds is one frame step,
            clip_seconds / num_frames); the mel settings must be stage 1's.
        hidden, num_layers, noise_dim, prime_steps: the TrajectoryGenerator's GRUs (prime_steps:
            rehearsals of frame 0's inputs that settle them, so the video does not jump at its
            start).
        audio_features: feed each frame's own log-mel (averaged over time) to the GRUs.
        orbit: add each style group's sound-paced loop (TrajectoryGenerator; needs
            audio_features), texture that moves faster when the sound is louder than its recent
            level; orbit_radius: the loops' initial radius in each W+ layer (the picture's
            scenes lie a few units apart there); orbit_memory: the steps that recent level
            averages.
        noise_drift: scroll the generator's noise images at a speed each frame's audio sets
            (`sgvideo.models.noise_drift`; needs audio_features): fine texture that moves with
            the loudness without moving the scene.
        scene_pan: pan the generator's coarse features sideways at a speed each frame's audio
            sets (needs audio_features): the whole scene moves, as clouds do in the wind; the
            layout term keeps it where the real scene stays put.
        init, text_init_samples, text_template, truncation, seed: the start latent w^0.
        adv_image_weight, adv_video_weight, clip_weight, latent_weight, anchor_weight,
            smooth_weight, layout_weight, detail_weight, motion_weight: loss weights (see
            above).
        layout_size: side of the thumbnails the layout term compares.
        restart_prob: chance that a training clip starts from another clip's start latent.
        image_d_channels, video_d_channels: discriminator widths.
        clip_frame_stride: the CLIP term reads every n-th frame (1: all). Frames a step apart
            are nearly the same picture to it, and at 1 it is a fifth of a demo step.
        lr, d_lr, betas, weight_decay, gamma: AdamW for the trajectory net (lr) and the
            discriminators (d_lr, default lr); StepLR per epoch for both.
        checkpoint_synthesis: recompute each frame's synthesis in the backward pass.
        noise_mode: the generator's noise ("const", "random" or "none").
        sample_every_n_steps: sample PNG + mp4 cadence in batches; 0: never.
    """

    stage = "trajectory"
    frozen_modules = ("generator", "clip", "audio_encoder", "inversion", "mel")

    def __init__(
        self,
        generator_path: str,
        inversion_path: str,
        audio_encoder_path: str,
        clip: str | None = None,
        categories: list[str] | None = None,
        mel: MelSettings = MelSettings(),
        window_seconds: float = 2.0 / 6,
        num_frames: int = 6,
        hidden: int = 512,
        num_layers: int = 5,
        noise_dim: int = 0,
        prime_steps: int = 16,
        audio_features: bool = True,
        orbit: bool = False,
        orbit_radius: float = 0.15,
        orbit_memory: float = 15.0,
        noise_drift: bool = False,
        scene_pan: bool = False,
        init: Literal["audio", "text"] = "audio",
        text_init_samples: int = 128,
        text_template: str = "a photo of {}",
        truncation: float = 0.7,
        adv_image_weight: float = 1.0,
        adv_video_weight: float = 1.0,
        clip_weight: float = 1e-3,
        latent_weight: float = 1.0,
        anchor_weight: float | None = None,
        smooth_weight: float = 0.0,
        layout_weight: float = 0.0,
        layout_size: int = 8,
        detail_weight: float = 0.0,
        motion_weight: float = 1.0,
        restart_prob: float = 0.0,
        image_d_channels: int = 64,
        video_d_channels: int = 32,
        clip_frame_stride: int = 1,
        lr: float = 1e-4,
        d_lr: float | None = None,
        betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 0.01,
        gamma: float = 0.98,
        checkpoint_synthesis: bool = False,
        noise_mode: Literal["const", "random", "none"] = "const",
        sample_every_n_steps: int = 500,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.mel_settings = MelSettings.of(mel)
        self.save_hyperparameters(ignore=["mel"])
        self.hparams["mel"] = self.mel_settings.as_dict()
        self.automatic_optimization = False
        if clip_frame_stride < 1:
            raise ValueError(f"clip_frame_stride must be >= 1, got {clip_frame_stride}")
        if init not in ("audio", "text"):
            raise ValueError(f"init must be 'audio' or 'text', got {init!r}")
        if init == "text" and not categories:
            raise ValueError("init='text' needs the category names (linked from the data module)")
        self.generator = load_generator(generator_path)
        self.inversion, inversion_hparams = load_inversion_encoder(inversion_path)
        check_inversion(self.inversion, inversion_hparams, self.generator, self.hparams)
        # Stage 1 reads windows of its own length, centred on each frame.
        self.hparams["sound_window_seconds"] = inversion_hparams.get(
            "window_seconds", window_seconds
        )
        self.audio_encoder = load_audio_encoder(audio_encoder_path)
        self.clip = load_clip(clip)
        if self.audio_encoder.embed_dim != clip_embed_dim(self.clip):
            raise ValueError(
                f"audio encoder {audio_encoder_path} embeds into {self.audio_encoder.embed_dim} "
                f"dimensions but CLIP {clip!r} into {clip_embed_dim(self.clip)}: use the CLIP "
                "the audio encoder was aligned with"
            )
        self.mel = self.mel_settings.log_mel().eval()
        self.trajectory = TrajectoryGenerator(
            self.generator.n_latent,
            self.generator.style_dim,
            hidden=hidden,
            num_layers=num_layers,
            audio_dim=self.mel_settings.n_mels if audio_features else 0,
            noise_dim=noise_dim,
            prime_steps=prime_steps,
            orbit=orbit,
            orbit_radius=orbit_radius,
            orbit_memory=orbit_memory,
            noise_drift=noise_drift,
            scene_pan=scene_pan,
        )
        size = self.generator.size
        self.image_d = ImageDiscriminator(size, channels=image_d_channels)
        self.video_d = VideoDiscriminator(size, channels=video_d_channels)
        if init == "text":
            shape = (len(categories), self.generator.n_latent, self.generator.style_dim)
            self.register_buffer("start_latents", torch.zeros(shape))
            self.register_buffer("start_latents_ready", torch.zeros((), dtype=torch.bool))
        self.anchor_weight = anchor_weight if anchor_weight is not None else float(init == "text")

    # ------------------------------------------------------------------ checkpoints and checks

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint[TRAJECTORY_CONFIG_KEY] = self.trajectory.config

    def on_fit_start(self) -> None:
        if getattr(self.trainer.precision_plugin, "scaler", None) is not None:
            raise ValueError(
                "TrajectoryGAN does not support loss-scaled fp16 ('16-mixed'): "
                "use trainer.precision 32 or bf16-mixed"
            )
        wrapped = self.trainer.strategy.model
        if isinstance(wrapped, DistributedDataParallel) and not wrapped.find_unused_parameters:
            raise ValueError(
                "TrajectoryGAN alternates discriminator and generator backward passes, which DDP "
                "only synchronises with unused-parameter detection: use "
                "--trainer.strategy ddp_find_unused_parameters_true"
            )
        self._ensure_start_latents()

    # ------------------------------------------------------------------ latents and frames

    @torch.no_grad()
    def sound_latents(self, waveform: Tensor, num_frames: int) -> tuple[Tensor, Tensor]:
        """The clip's sound "b samples" -> each frame's stage-1 window as log-mel
        "b t n_mels time" and its sound latent w_a "b t n_latent style"."""
        hp = self.hparams
        windows = segment_for_frames(
            waveform,
            self.mel_settings.sample_rate,
            num_frames,
            1.0 / hp.window_seconds,
            hp.sound_window_seconds,
            inside=True,
        )
        mel = self.mel(windows)
        flat = rearrange(mel, "b t m f -> (b t) m f")
        w_a = self.inversion.sound_latents(flat, self.generator.w_avg)
        return mel, rearrange(w_a, "(b t) n s -> b t n s", b=waveform.shape[0])

    @torch.no_grad()
    def frame_features(self, audio: Tensor) -> Tensor | None:
        """Each frame's own audio segment "b t samples" -> its features "b t n_mels" (or None
        when the net reads none)."""
        if not self.trajectory.audio_dim:
            return None
        return frame_audio_features(self.mel(audio))

    @torch.no_grad()
    def _ensure_start_latents(self) -> None:
        if self.hparams.init != "text" or bool(self.start_latents_ready):
            return
        self.start_latents.copy_(self.choose_start_latents())
        self.start_latents_ready.fill_(True)

    @torch.no_grad()
    def choose_start_latents(self) -> Tensor:
        """The authors' CLIP-guided starts: per category, the sample nearest its prompt "c n s".

        The same seeded pool of truncated latents serves every category (and every DDP rank).
        """
        hp = self.hparams
        prompts = prompts_for(hp.categories, hp.text_template)
        return clip_chosen_latents(
            self.generator, self.clip, prompts, hp.text_init_samples, hp.truncation, hp.seed
        )

    def start_latent(self, w_a: Tensor, category: Tensor) -> Tensor:
        """w^0 "b n s": the first window's sound latent, or the category's CLIP-chosen start."""
        if self.hparams.init == "audio":
            return w_a[:, 0]
        self._ensure_start_latents()
        if category.min() < 0 or category.max() >= self.start_latents.shape[0]:
            raise ValueError(
                f"category index out of range for the {self.start_latents.shape[0]} categories "
                f"{self.hparams.categories}: {category.tolist()}"
            )
        return self.start_latents[category]

    def synthesize(
        self, w: Tensor, noise_offsets: Tensor | None = None, pan_offsets: Tensor | None = None
    ) -> Tensor:
        """Latents "b t n s" (and the offsets "b t" of the noise images, `noise_drift`, and of
        the panned scene, `scene_pan`) -> frames "b t 3 h w".

        With `checkpoint_synthesis`, each time step's synthesis is recomputed in the backward
        pass instead of keeping its activations, so only one step's activations live at once.
        """
        mode = self.hparams.noise_mode
        if self.hparams.checkpoint_synthesis and torch.is_grad_enabled():
            steps = lambda x: [None] * w.shape[1] if x is None else x.unbind(1)
            frames = [
                checkpoint(self.generator.synthesis, w_t, mode, noise, pan, use_reentrant=False)
                for w_t, noise, pan in zip(
                    w.unbind(dim=1), steps(noise_offsets), steps(pan_offsets), strict=True
                )
            ]
            return torch.stack(frames, dim=1)
        flat = lambda x: None if x is None else rearrange(x, "b t -> (b t)")
        frames = self.generator.synthesis(
            rearrange(w, "b t n s -> (b t) n s"), mode, flat(noise_offsets), flat(pan_offsets)
        )
        return rearrange(frames, "(b t) c h w -> b t c h w", b=w.shape[0])

    def forward(self, waveform: Tensor, audio: Tensor, category: Tensor) -> Tensor:
        """The clip's sound "b samples", each frame's segment "b t samples" and the category
        "b" -> latents "b t n_latent style"."""
        _, w_a = self.sound_latents(waveform, audio.shape[1])
        w0 = self.start_latent(w_a, category)
        return self.trajectory(w0, w_a, self.frame_features(audio))

    # ------------------------------------------------------------------ losses

    def _real_frames(self, batch: dict[str, Any]) -> Tensor:
        frames = batch["frames"]
        size = self.generator.size
        if frames.ndim != 5 or tuple(frames.shape[2:]) != (3, size, size):
            raise ValueError(
                f"real frames are {tuple(frames.shape)} but the generator makes 'b t 3 {size} "
                f"{size}' frames: set the data's image_size to {size}"
            )
        return frames

    def _discriminator_loss(self, real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        image = lsgan_d_loss(
            self.image_d(rearrange(real, "b t c h w -> (b t) c h w")),
            self.image_d(rearrange(fake, "b t c h w -> (b t) c h w")),
        )
        video = lsgan_d_loss(self.video_d(_as_video(real)), self.video_d(_as_video(fake)))
        return {"d_image": image, "d_video": video}

    def clip_frames(self, *videos: Tensor) -> list[Tensor]:
        """The frames the CLIP term reads, "b t ..." -> "(b t') ..." for each of `videos` alike:
        every `clip_frame_stride`-th frame from a random first one in training (so that every
        frame is read over the steps), from frame 0 in validation."""
        stride = self.hparams.clip_frame_stride
        phase = int(torch.randint(stride, ())) if stride > 1 and self.training else 0
        return [rearrange(video[:, phase::stride], "b t ... -> (b t) ...") for video in videos]

    def _generator_terms(
        self,
        fake: Tensor,
        real: Tensor,
        w: Tensor,
        w_a: Tensor,
        w0: Tensor,
        mel: Tensor,
        all_terms: bool,
    ) -> dict[str, tuple[float, Tensor]]:
        """Loss terms as name -> (weight, value); zero-weight terms only when `all_terms`."""
        hp = self.hparams
        weights = {
            "adv_image": hp.adv_image_weight,
            "adv_video": hp.adv_video_weight,
            "clip": hp.clip_weight,
            "latent": hp.latent_weight,
            "anchor": self.anchor_weight,
            "smooth": hp.smooth_weight if w.shape[1] > 1 else 0.0,
            "layout": hp.layout_weight,
            "detail": hp.detail_weight,
            "motion": hp.motion_weight if w.shape[1] > 2 else 0.0,
        }
        wanted = {name for name, weight in weights.items() if weight or all_terms}
        terms: dict[str, Tensor] = {}
        if "adv_image" in wanted:
            frames = rearrange(fake, "b t c h w -> (b t) c h w")
            terms["adv_image"] = lsgan_g_loss(self.image_d(frames))
        if "adv_video" in wanted:
            terms["adv_video"] = lsgan_g_loss(self.video_d(_as_video(fake)))
        if "clip" in wanted:
            read, read_mel = self.clip_frames(fake, mel)
            with torch.no_grad():
                sound = self.audio_encoder(read_mel, normalize=True)
            terms["clip"] = cosine_distance(clip_image_embed(self.clip, read), sound).mean()
        if "latent" in wanted:
            terms["latent"] = F.mse_loss(w, w_a)
        if "anchor" in wanted:
            terms["anchor"] = F.mse_loss(w, w0.unsqueeze(1).expand_as(w))
        if "smooth" in wanted and w.shape[1] > 1:
            terms["smooth"] = F.mse_loss(w[:, 1:], w[:, :-1])
        if "layout" in wanted:
            terms["layout"] = layout_distance(fake, real, hp.layout_size)
        if "detail" in wanted:
            terms["detail"] = detail_distance(fake, real)
        if "motion" in wanted and w.shape[1] > 2:
            terms["motion"] = motion_matching_loss(fake, real)
        return {name: (weights[name], value) for name, value in terms.items()}

    def _generate(self, batch: dict[str, Any], restart_prob: float = 0.0) -> tuple[Tensor, ...]:
        audio = batch["audio"]
        mel, w_a = self.sound_latents(batch["waveform"], audio.shape[1])
        w0 = self.start_latent(w_a, batch["category"])
        if restart_prob > 0:
            w0 = restarted(w0, restart_prob)
        features = self.frame_features(audio)
        w = self.trajectory(w0, w_a, features)
        offsets = self.trajectory.scroll_offsets(features)
        return self.synthesize(w, *offsets), w, w_a, w0, mel

    # ------------------------------------------------------------------ steps

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        real = self._real_frames(batch)
        opt_g, opt_d = self.optimizers()
        fake, w, w_a, w0, mel = self._generate(batch, self.hparams.restart_prob)

        d_terms = self._discriminator_loss(real, fake.detach())
        d_loss = d_terms["d_image"] + d_terms["d_video"]
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        # the wrapped optimizer's step is not counted: global_step counts batches
        opt_d.optimizer.step()

        with self.toggled_optimizer(opt_g):  # no discriminator gradients from the G loss
            g_terms = self._generator_terms(fake, real, w, w_a, w0, mel, all_terms=False)
            g_loss = sum(weight * value for weight, value in g_terms.values())
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_loss)
            opt_g.step()

        logs = {"d_loss": d_loss, "g_loss": g_loss, **d_terms}
        logs.update({name: value for name, (_, value) in g_terms.items()})
        self.log_dict({f"train/{k}": v.detach() for k, v in logs.items()}, batch_size=len(real))
        self.log("d_loss", d_loss.detach(), prog_bar=True, logger=False, batch_size=len(real))
        self.log("g_loss", g_loss.detach(), prog_bar=True, logger=False, batch_size=len(real))
        every = self.hparams.sample_every_n_steps
        if every and self.trainer.is_global_zero and (self.global_step - 1) % every == 0:
            self.save_samples(batch, fake.detach(), f"step{self.global_step - 1:07d}")

    def save_samples(self, batch: dict[str, Any], fake: Tensor, name: str) -> Path:
        """The batch's first clip, real vs generated (`visuals.save_clip_pair`), as
        `<log_dir>/samples/<name>.png` and `.mp4`."""
        waveform = batch.get("waveform")
        return visuals.save_clip_pair(
            self,
            visuals.run_folder(self, "samples") / f"{name}.png",
            batch["frames"][0],
            fake[0],
            fps=1.0 / self.hparams.window_seconds,
            waveform=None if waveform is None else waveform[0],
            sample_rate=self.mel_settings.sample_rate,
        )

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        real = self._real_frames(batch)
        fake, w, w_a, w0, mel = self._generate(batch)
        logs = dict(self._discriminator_loss(real, fake))
        logs.update(
            {k: v for k, (_, v) in self._generator_terms(fake, real, w, w_a, w0, mel, True).items()}
        )
        logs = {f"val/{k}": v for k, v in logs.items()}
        self.log_dict(logs, batch_size=len(real), sync_dist=True)

    def configure_optimizers(self) -> tuple[list, list]:
        hp = self.hparams
        kwargs = dict(betas=tuple(hp.betas), weight_decay=hp.weight_decay)
        opt_g = torch.optim.AdamW(self.trajectory.parameters(), lr=hp.lr, **kwargs)
        d_params = chain(self.image_d.parameters(), self.video_d.parameters())
        opt_d = torch.optim.AdamW(d_params, lr=hp.d_lr or hp.lr, **kwargs)
        schedulers = [torch.optim.lr_scheduler.StepLR(o, 1, gamma=hp.gamma) for o in (opt_g, opt_d)]
        return [opt_g, opt_d], schedulers

    def on_train_epoch_end(self) -> None:
        for scheduler in self.lr_schedulers():
            scheduler.step()


def _as_video(frames: Tensor) -> Tensor:
    return rearrange(frames, "b t c h w -> b c t h w")
