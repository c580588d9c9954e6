"""Sound-guided editing of W+ latents (see `sgvideo.edit` for the method): the move toward the
sound latent on chosen style groups, sound + text mixing and CLIP-guided refinement."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor
from torch.nn import functional as F
from tqdm import tqdm

from sgvideo.audio import frame_count, segment_for_frames
from sgvideo.checkpoints.stylegan2 import load_generator
from sgvideo.files import saved_path
from sgvideo.inference.latents import apply_direction, clip_chosen_latents, group_mask
from sgvideo.inference.projection import Optimized
from sgvideo.inference.sound import SoundInverter
from sgvideo.models.audio_encoder import load_audio_encoder
from sgvideo.models.clip_model import clip_image_embed, clip_text_embed, load_clip
from sgvideo.models.inversion_encoder import load_inversion_encoder
from sgvideo.models.latents import parse_groups
from sgvideo.models.stylegan2 import Generator


def check_mix(mix: float) -> None:
    if not 0.0 <= mix <= 1.0:
        raise ValueError(f"mix must be in [0, 1], got {mix}")


def mix_embeddings(sound: Tensor, text: Tensor, mix: float) -> Tensor:
    """normalise(mix * text + (1 - mix) * sound) over the last dimension."""
    check_mix(mix)
    return F.normalize(mix * text + (1.0 - mix) * sound, dim=-1)


def clip_guided_refine(
    generator: Generator,
    clip: torch.nn.Module,
    w_init: Tensor,
    target: Tensor,
    groups: str | Sequence[str],
    steps: int = 50,
    lr: float = 0.01,
    l2_weight: float = 0.008,
    w_anchor: Tensor | None = None,
    noise_mode: str = "const",
    progress: bool = True,
) -> Optimized:
    """Minimise 1 - cos(CLIP(G(w)), target) + l2_weight * ||w - w_anchor||^2 from `w_init` "n s".

    Only the chosen groups' layers move (the others stay exactly `w_init`'s); `target` "d" is a
    unit embedding; `w_anchor` defaults to `w_init`.
    """
    anchor = (w_init if w_anchor is None else w_anchor).detach()
    start = w_init.detach()
    mask = group_mask(start.shape[-2], groups, start.device)
    offset = torch.zeros_like(start, requires_grad=True)
    optimizer = torch.optim.Adam([offset], lr=lr)
    goal = F.normalize(target.detach().reshape(1, -1).to(start.device), dim=-1)
    losses = []
    with torch.enable_grad():
        for _ in tqdm(range(steps), desc="refine", unit="step", disable=not progress):
            w = torch.where(mask, start + offset, start)
            image = generator.synthesis(w[None], noise_mode)
            distance = 1.0 - (clip_image_embed(clip, image) * goal).sum()
            loss = distance + l2_weight * (w - anchor).square().sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return Optimized(torch.where(mask, start + offset.detach(), start), losses)


@dataclass
class EditSettings:
    """How a latent is edited: groups, strength, optional text mixing and CLIP refinement.

    Args:
        groups: style groups to edit, e.g. coarse,mid.
        strength: how far to move toward the sound latent.
        text: mix in a text prompt, e.g. "a photo of a snowy mountain".
        mix: weight of the text (0: sound only, 1: text only).
        optimize_steps: CLIP-guided refinement steps (0: none).
        lr: refinement learning rate.
        l2_weight: refinement tether to the unedited latent.
        text_samples: random latents searched for the text one.
    """

    groups: str | Sequence[str] = "coarse,mid,fine"
    strength: float = 0.5
    text: str | None = None
    mix: float = 0.5
    optimize_steps: int = 0
    lr: float = 0.01
    l2_weight: float = 0.008
    text_samples: int = 128

    def __post_init__(self) -> None:
        self.groups = parse_groups(self.groups)
        check_mix(self.mix)
        if self.optimize_steps < 0:
            raise ValueError(f"optimize steps must be >= 0, got {self.optimize_steps}")


class SoundEditor:
    """The frozen parts of a stage-1 checkpoint, set up for editing latents with sounds.

    CLIP and the audio encoder load on first use (only refinement and text mixing need them).
    """

    def __init__(
        self,
        generator: Generator,
        inverter: SoundInverter,
        clip_spec: str | None = None,
        audio_encoder_path: str | None = None,
        noise_mode: str = "const",
        device: str | torch.device = "cpu",
    ) -> None:
        self.device = torch.device(device)
        self.generator = generator.eval().requires_grad_(False).to(self.device)
        self.inverter = inverter.to(self.device)
        self.clip_spec, self.audio_encoder_path = clip_spec, audio_encoder_path
        self.noise_mode = noise_mode
        self._text_latents: dict[str, Tensor] = {}

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: str | os.PathLike,
        device: str | torch.device = "cpu",
        generator_path: str | None = None,
        clip: str | None = None,
        audio_encoder_path: str | None = None,
    ) -> SoundEditor:
        """From a stage-1 `inversion` checkpoint; the paths saved in it (found as `saved_path`
        finds them) can be overridden."""
        encoder, hparams = load_inversion_encoder(checkpoint)

        def saved(key: str) -> str | None:
            value = hparams.get(key)
            return saved_path(value, checkpoint) if value and value != "tiny" else value

        generator = load_generator(generator_path or saved("generator_path"))
        return cls(
            generator,
            SoundInverter.from_hparams(encoder, generator.w_avg, hparams),
            clip_spec=clip or saved("clip"),
            audio_encoder_path=audio_encoder_path or saved("audio_encoder_path"),
            noise_mode=hparams.get("noise_mode", "const"),
            device=device,
        )

    @cached_property
    def clip(self) -> torch.nn.Module:
        return load_clip(self.clip_spec, device=self.device)

    @cached_property
    def audio_encoder(self) -> torch.nn.Module:
        if not self.audio_encoder_path:
            raise ValueError(
                "the stage-1 checkpoint names no audio encoder: pass --audio-encoder (a stage-0 "
                "align checkpoint) for CLIP refinement with a sound target"
            )
        return load_audio_encoder(self.audio_encoder_path).to(self.device)

    def sound_embedding(self, windows: Tensor) -> Tensor:
        """Audio windows "t samples" -> unit audio-encoder embeddings "t d"."""
        with torch.no_grad():
            mel = self.inverter.mel(windows.to(self.device))
            return self.audio_encoder(mel, normalize=True)

    def frame_sound(
        self, wave: Tensor, fps: float, frame: int, need_embedding: bool
    ) -> tuple[Tensor, Tensor | None]:
        """Frame `frame`'s window: sound latent "n s" and (if needed) embedding "d"."""
        inv = self.inverter
        windows = segment_for_frames(wave, inv.sample_rate, 1, fps, inv.window_seconds, frame)
        embed = self.sound_embedding(windows)[0] if need_embedding else None
        return inv(windows)[0], embed

    def clip_sound(
        self, wave: Tensor, need_embedding: bool, chunk: int = 64
    ) -> tuple[Tensor, Tensor | None]:
        """A whole sound: mean sound latent "n s" over consecutive windows of `window_seconds`
        and (if needed) the normalised mean of their unit embeddings "d"."""
        inv = self.inverter
        rate = 1.0 / inv.window_seconds
        total = frame_count(wave.shape[-1], inv.sample_rate, rate)
        w_sum, e_sum = 0.0, 0.0
        for first in range(0, total, chunk):
            count = min(chunk, total - first)
            windows = segment_for_frames(
                wave, inv.sample_rate, count, rate, inv.window_seconds, first
            )
            w_sum = w_sum + inv(windows).sum(dim=0)
            if need_embedding:
                e_sum = e_sum + self.sound_embedding(windows).sum(dim=0)
        embed = F.normalize(e_sum, dim=-1) if need_embedding else None
        return w_sum / total, embed

    def text_latent(self, text: str, samples: int) -> Tensor:
        if text not in self._text_latents:
            chosen = clip_chosen_latents(self.generator, self.clip, [text], samples)
            self._text_latents[text] = chosen[0]
        return self._text_latents[text]

    def edit(
        self,
        w: Tensor,
        w_sound: Tensor,
        sound_embed: Tensor | None,
        settings: EditSettings,
        w_init: Tensor | None = None,
        progress: bool = True,
    ) -> Tensor:
        """The edited latent "n s" of `w` for a sound (see the module doc).

        `w_init` warm-starts the refinement (e.g. the previous frame's result) instead of the
        moved latent.
        """
        direction = w_sound - w
        target = sound_embed
        if settings.text is not None:
            w_text = self.text_latent(settings.text, settings.text_samples)
            direction = (1 - settings.mix) * direction + settings.mix * (w_text - w)
            if settings.optimize_steps:
                text_embed = clip_text_embed(self.clip, [settings.text])[0]
                sound = text_embed if sound_embed is None else sound_embed
                target = mix_embeddings(sound, text_embed, settings.mix)
        moved = apply_direction(w, direction, settings.groups, settings.strength)
        if not settings.optimize_steps:
            return moved
        if target is None:
            raise ValueError("CLIP refinement needs the sound's embedding (an audio encoder)")
        start = (
            moved
            if w_init is None
            else torch.where(group_mask(w.shape[-2], settings.groups, w.device), w_init, moved)
        )
        return clip_guided_refine(
            self.generator,
            self.clip,
            start,
            target,
            settings.groups,
            steps=settings.optimize_steps,
            lr=settings.lr,
            l2_weight=settings.l2_weight,
            w_anchor=w,
            noise_mode=self.noise_mode,
            progress=progress,
        ).w

    def needs_embedding(self, settings: EditSettings) -> bool:
        """Refinement needs the sound's embedding unless the target is all text."""
        return settings.optimize_steps > 0 and not (
            settings.text is not None and settings.mix == 1.0
        )
