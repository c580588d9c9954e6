"""Sound-guided image and video editing in StyleGAN2's W+ (`sgvideo project|edit-image|edit-video`).

- Projection: a real image -> W+ by Adam on the latent from w_avg (or a warm start): pixel MSE,
  plus optionally 1 - cos of the frozen CLIP image embeddings of G(w) and the image.
- Latent move: w' = w + strength * (w_sound - w) on the chosen style groups only (coarse /
  mid / fine W+ layers; the others are returned bit for bit). w_sound is the stage-1 sound
  latent: for an image, the mean of the sound latents of consecutive `window_seconds` windows
  of the whole sound; for a video frame, the latent of the window centred on that frame.
- CLIP-guided refinement (the authors' CVPR 2022 manipulation): starting from w', minimise
  1 - cos(CLIP_img(G(w)), target) + l2_weight * ||w - w_anchor||^2 (sum of squares, w_anchor
  the unedited latent) over the chosen groups only. The sound target is the audio encoder's
  embedding: L2-normalised mean of the windows' unit embeddings (image), or the frame's window.
- Sound + text mixing (`text`, `mix`): the refinement target becomes
  normalise(mix * CLIP_txt(text) + (1 - mix) * sound target), and the latent direction
  (1 - mix) * (w_sound - w) + mix * (w_text - w), where w_text is the authors' CLIP choice for a
  prompt: among `text_samples` seeded random latents truncated to 0.7, the one whose image is
  nearest the prompt in CLIP space.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision.transforms.functional as TF
from einops import rearrange, repeat
from PIL import Image
from torch import Tensor
from torch.nn import functional as F
from tqdm import tqdm

from sgvideo.audio import read_audio, segment_for_frames
from sgvideo.checkpoints.stylegan2 import load_generator
from sgvideo.errors import describe, reports_user_errors
from sgvideo.files import (
    atomic_path,
    read_torch_file,
    refuse_overwriting_inputs,
    require_file,
)
from sgvideo.generate import (
    VIDEO_SUFFIXES,
    ExponentialSmoother,
    SoundInverter,
    check_output_path,
    frame_count,
    frames_to_uint8,
    resolve_device,
    seed_latent,
    seeded,
)
from sgvideo.models.audio_encoder import load_audio_encoder
from sgvideo.models.clip_model import clip_image_embed, clip_text_embed, load_clip
from sgvideo.models.inversion_encoder import load_inversion_encoder
from sgvideo.models.latents import parse_groups, style_groups
from sgvideo.models.stylegan2 import Generator
from sgvideo.video_io import VideoWriter, iter_frames, probe_video

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
LATENT_KEY = "w_plus"
TEXT_CHUNK = 16


# ---------------------------------------------------------------------------- images, latents


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as "h w 3" uint8 RGB; a missing, unreadable or oversized (more pixels
    than PIL's decompression-bomb limit) file is a one-line error naming it."""
    path = require_file(path, "image")
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except Image.DecompressionBombError as error:
        raise ValueError(f"{path}: the image is too large to read: {error}") from None
    except (OSError, SyntaxError, ValueError) as error:  # PIL's ways of saying "corrupt"
        raise ValueError(f"{path}: cannot read as an image: {describe(error)}") from None


def image_tensor(rgb: np.ndarray, size: int) -> Tensor:
    """ "h w 3" uint8 -> "3 size size" in [-1, 1] (shorter side resized, centre crop)."""
    x = rearrange(torch.from_numpy(np.array(rgb)), "h w c -> c h w").float() / 127.5 - 1.0
    x = TF.resize(x, size, antialias=True)
    return TF.center_crop(x, size).clamp(-1, 1)


def save_latent(path: str | os.PathLike, w: Tensor, **info: Any) -> Path:
    """Write a W+ latent "n_latent style_dim" (and strings/numbers in `info`) atomically."""
    path = check_output_path(path, (".pt",), "latent file")
    with atomic_path(path) as tmp:
        torch.save({LATENT_KEY: w.detach().cpu().float(), **info}, tmp)
    return path


def load_latent(path: str | os.PathLike, generator: Generator) -> Tensor:
    """A latent written by `sgvideo project` (or `save_latent`), checked against `generator`."""
    path = require_file(path, "latent file", hint="write one with `sgvideo project`")
    data = read_torch_file(path, "latent file")
    w = data.get(LATENT_KEY) if isinstance(data, dict) else None
    expected = (generator.n_latent, generator.style_dim)
    if not isinstance(w, Tensor) or tuple(w.shape) != expected:
        found = tuple(w.shape) if isinstance(w, Tensor) else "no latent"
        raise ValueError(
            f"{path}: expected a '{LATENT_KEY}' W+ latent of shape {expected}, found {found}"
        )
    return w


def render(generator: Generator, w: Tensor, noise_mode: str = "const") -> Tensor:
    """W+ latents "... n s" -> images "... 3 h w" (no gradient)."""
    with torch.no_grad():
        flat = generator.synthesis(w.reshape(-1, *w.shape[-2:]), noise_mode)
    return flat.reshape(*w.shape[:-2], *flat.shape[1:])


# ---------------------------------------------------------------------------- projection


@dataclass
class Optimized:
    """An optimised W+ latent "n s" and its loss after each step."""

    w: Tensor
    losses: list[float] = field(default_factory=list)


def project_image(
    generator: Generator,
    image: Tensor,
    steps: int = 200,
    lr: float = 0.05,
    clip: torch.nn.Module | None = None,
    clip_weight: float = 1.0,
    w_init: Tensor | None = None,
    noise_mode: str = "const",
    progress: bool = True,
) -> Optimized:
    """Invert an image "3 h w" in [-1, 1] (the generator's size) into W+ by Adam.

    Starts at w_avg on every layer (or `w_init` "n s"); loss = mean square pixel error, plus
    `clip_weight` * (1 - cos) between CLIP image embeddings of G(w) and the image when `clip`
    is given.
    """
    size = generator.size
    if image.dim() != 3 or tuple(image.shape) != (3, size, size):
        raise ValueError(
            f"image must be '3 {size} {size}' for this generator, got {tuple(image.shape)}"
        )
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    target = image[None].to(generator.w_avg.device)
    start = (
        w_init if w_init is not None else repeat(generator.w_avg, "s -> n s", n=generator.n_latent)
    )
    w = start.detach().clone().to(target.device).requires_grad_(True)
    target_embed = None
    if clip is not None:
        with torch.no_grad():
            target_embed = clip_image_embed(clip, target)
    optimizer = torch.optim.Adam([w], lr=lr)
    losses = []
    with torch.enable_grad():
        for _ in tqdm(range(steps), desc="project", unit="step", disable=not progress):
            fake = generator.synthesis(w[None], noise_mode)
            loss = F.mse_loss(fake, target)
            if target_embed is not None:
                cos = (clip_image_embed(clip, fake) * target_embed).sum(dim=-1)
                loss = loss + clip_weight * (1.0 - cos).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return Optimized(w.detach(), losses)


# ---------------------------------------------------------------------------- latent edits


def group_mask(
    n_latent: int, groups: str | Sequence[str], device: torch.device | None = None
) -> Tensor:
    """ "n 1" bool: True on the W+ layers of the chosen style groups."""
    mask = torch.zeros(n_latent, 1, dtype=torch.bool, device=device)
    layers = style_groups(n_latent)
    for name in parse_groups(groups):
        mask[layers[name]] = True
    return mask


def apply_direction(
    w: Tensor, direction: Tensor, groups: str | Sequence[str], strength: float
) -> Tensor:
    """w + strength * direction on the chosen groups' layers of "... n s"; the rest untouched."""
    mask = group_mask(w.shape[-2], groups, w.device)
    return torch.where(mask, w + strength * direction, w)


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


@torch.no_grad()
def text_latent(
    generator: Generator,
    clip: torch.nn.Module,
    text: str,
    samples: int = 128,
    truncation: float = 0.7,
    seed: int = 0,
) -> Tensor:
    """The authors' CLIP choice for a prompt: the seeded truncated random latent "n s" whose
    image is nearest `text` in CLIP space."""
    g = generator
    z = torch.randn(samples, g.style_dim, generator=torch.Generator().manual_seed(seed))
    w = g.truncate(g.mapping(z.to(g.w_avg.device)), truncation)
    embeds = torch.cat(
        [
            clip_image_embed(clip, g.synthesis(repeat(c, "b s -> b n s", n=g.n_latent)))
            for c in w.split(TEXT_CHUNK)
        ]
    )
    best = (embeds @ clip_text_embed(clip, [text])[0]).argmax()
    return repeat(w[best], "s -> n s", n=g.n_latent)


# ---------------------------------------------------------------------------- sound editor


@dataclass
class EditSettings:
    """How a latent is edited: groups, strength, optional text mixing and CLIP refinement."""

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
        """From a stage-1 `inversion` checkpoint; the paths saved in it can be overridden."""
        encoder, hparams = load_inversion_encoder(checkpoint)
        generator = load_generator(generator_path or hparams["generator_path"])
        return cls(
            generator,
            SoundInverter.from_hparams(encoder, generator.w_avg, hparams),
            clip_spec=clip or hparams.get("clip"),
            audio_encoder_path=audio_encoder_path or hparams.get("audio_encoder_path"),
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
            self._text_latents[text] = text_latent(self.generator, self.clip, text, samples)
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


def strip(images: Sequence[Tensor]) -> np.ndarray:
    """Images "3 h w" in [-1, 1] side by side: "h (k w) 3" uint8."""
    pixels = frames_to_uint8(torch.stack([img.detach().cpu().float() for img in images]))
    return np.ascontiguousarray(rearrange(pixels, "k h w c -> h (k w) c"))


# ---------------------------------------------------------------------------- Python API


def edit_image(
    checkpoint: str | os.PathLike,
    audio: str | os.PathLike,
    out: str | os.PathLike,
    image: str | os.PathLike | None = None,
    latent: str | os.PathLike | None = None,
    seed: int | None = None,
    settings: EditSettings | None = None,
    truncation: float = 0.7,
    project_steps: int = 200,
    device: str = "cpu",
    save_latent_to: str | os.PathLike | None = None,
    generator_path: str | None = None,
    clip: str | None = None,
    audio_encoder_path: str | None = None,
    progress: bool = True,
) -> tuple[Path, Path]:
    """Edit an image (file, latent file or seed: exactly one) with a sound; writes the edited
    image to `out` and a before/after strip beside it (`<out stem>_strip.png`: [the input
    image,] its reconstruction G(w), the edit). Returns both paths."""
    settings = settings or EditSettings()
    out = check_output_path(out, IMAGE_SUFFIXES, "--out")
    strip_path = out.with_name(f"{out.stem}_strip.png")
    given = [n for n, v in (("image", image), ("latent", latent), ("seed", seed)) if v is not None]
    if len(given) != 1:
        raise ValueError("give exactly one of --image, --latent or --seed")
    if save_latent_to is not None:
        check_output_path(save_latent_to, (".pt",), "--save-latent")
    refuse_overwriting_inputs(
        {"--out": out, "the strip": strip_path, "--save-latent": save_latent_to},
        {"--image": image, "--latent": latent, "--audio": audio, "--checkpoint": checkpoint},
    )
    sound = read_audio(audio)  # inputs are checked before the models load
    rgb = None if image is None else read_image(image)
    editor = SoundEditor.from_checkpoint(
        checkpoint, resolve_device(device), generator_path, clip, audio_encoder_path
    )
    g = editor.generator
    wave = sound.at(editor.inverter.sample_rate)
    before: list[Tensor] = []
    if rgb is not None:
        target = image_tensor(rgb, g.size).to(editor.device)
        w = project_image(
            g, target, project_steps, noise_mode=editor.noise_mode, progress=progress
        ).w
        before.append(target)
    elif latent is not None:
        w = load_latent(latent, g).to(editor.device)
    else:
        w = seed_latent(g, seed, truncation)
    w_sound, embed = editor.clip_sound(wave, editor.needs_embedding(settings))
    with seeded(0):
        edited = editor.edit(w, w_sound, embed, settings, progress=progress)
    images = render(g, torch.stack([w, edited]), editor.noise_mode)
    with atomic_path(out) as tmp:
        Image.fromarray(frames_to_uint8(images[1:])[0]).save(tmp, format=_pil_format(out))
    with atomic_path(strip_path) as tmp:
        Image.fromarray(strip([*before, *images])).save(tmp, format="PNG")
    if save_latent_to is not None:
        save_latent(save_latent_to, edited, audio=str(audio))
    return out, strip_path


def _pil_format(path: Path) -> str:
    return {".jpg": "JPEG", ".jpeg": "JPEG"}.get(path.suffix.lower(), path.suffix[1:].upper())


def edit_video(
    checkpoint: str | os.PathLike,
    video: str | os.PathLike,
    audio: str | os.PathLike,
    out: str | os.PathLike,
    settings: EditSettings | None = None,
    project_steps: int = 100,
    warm_steps: int = 30,
    smoothing: float = 0.6,
    device: str = "cpu",
    generator_path: str | None = None,
    clip: str | None = None,
    audio_encoder_path: str | None = None,
    progress: bool = True,
) -> Path:
    """Edit every frame of `video` with the sound of `audio` and write it with that sound.

    Frame t is projected into W+ (`project_steps` from w_avg for the first frame, then
    `warm_steps` from the previous frame's latent), moved toward the sound latent of the audio
    window centred on its timestamp (sound latents smoothed like `sgvideo generate`'s), and
    refined if asked (warm-started from the previous frame's edit). Frames are rendered at the
    generator's size and streamed to `out`; the audio is cut to the video's duration.
    """
    settings = settings or EditSettings()
    out = check_output_path(out, VIDEO_SUFFIXES, "--out")
    refuse_overwriting_inputs(
        {"--out": out}, {"--video": video, "--audio": audio, "--checkpoint": checkpoint}
    )
    info = probe_video(video)  # inputs are checked before the models load
    sound = read_audio(audio)
    smoother = ExponentialSmoother(smoothing)
    editor = SoundEditor.from_checkpoint(
        checkpoint, resolve_device(device), generator_path, clip, audio_encoder_path
    )
    g = editor.generator
    rate = editor.inverter.sample_rate
    wave = sound.at(rate)
    fps = info.fps or 30.0
    total = info.num_frames or frame_count(round(info.duration * rate), rate, fps)
    need_embedding = editor.needs_embedding(settings)
    w = edited = None
    with (
        seeded(0),
        VideoWriter(out, fps, g.size, wave[: round(total / fps * rate)], rate) as writer,
        tqdm(total=total, desc="edit-video", unit="frame", disable=not progress) as bar,
    ):
        for t, (_, rgb) in enumerate(iter_frames(video)):
            target = image_tensor(rgb, g.size).to(editor.device)
            steps = project_steps if w is None else warm_steps
            w = project_image(
                g, target, steps, w_init=w, noise_mode=editor.noise_mode, progress=False
            ).w
            w_sound, embed = editor.frame_sound(wave, fps, t, need_embedding)
            w_sound = smoother(w_sound[None])[0]
            edited = editor.edit(w, w_sound, embed, settings, w_init=edited, progress=False)
            writer.write(frames_to_uint8(render(g, edited[None], editor.noise_mode)))
            bar.update()
    return out


# ---------------------------------------------------------------------------- command lines


def _run(parser: argparse.ArgumentParser, argv: list[str] | None, action) -> int:
    """Parse, run `action(args)` and print what it wrote."""
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:
        return int(stop.code or 0)
    for path in action(args):
        print(f"wrote {path}")
    return 0


def _add_common(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--device", default="cpu", help="cpu, cuda, ...")
    add("--no-progress", action="store_true", help="no progress bars")


def _add_edit_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--audio", required=True, help="the sound that guides the edit")
    add("--checkpoint", required=True, help="stage-1 inversion checkpoint")
    add("--groups", default="coarse,mid,fine", help="style groups to edit, e.g. coarse,mid")
    add("--strength", type=float, default=0.5, help="how far to move toward the sound latent")
    add("--optimize-steps", type=int, default=0, help="CLIP-guided refinement steps (0: none)")
    add("--lr", type=float, default=0.01, help="refinement learning rate")
    add("--l2-weight", type=float, default=0.008, help="refinement tether to the unedited latent")
    add("--text", default=None, help='mix in a text prompt, e.g. "a photo of a snowy mountain"')
    add("--mix", type=float, default=0.5, help="weight of the text (0: sound only, 1: text only)")
    add("--text-samples", type=int, default=128, help="random latents searched for the text one")
    add("--generator", default=None, help="StyleGAN2 .pt (default: the checkpoint's path)")
    add("--clip", default=None, help="CLIP weights or 'tiny' (default: the checkpoint's)")
    add("--audio-encoder", default=None, help="stage-0 checkpoint (default: the checkpoint's)")
    _add_common(parser)


def _settings(args: argparse.Namespace) -> EditSettings:
    return EditSettings(
        groups=args.groups,
        strength=args.strength,
        text=args.text,
        mix=args.mix,
        optimize_steps=args.optimize_steps,
        lr=args.lr,
        l2_weight=args.l2_weight,
        text_samples=args.text_samples,
    )


def project_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sgvideo project", description="Invert an image into StyleGAN2's W+ by optimisation."
    )
    add = parser.add_argument
    add("--image", required=True, help="image file (resized and centre-cropped to G's size)")
    add("--generator", required=True, help="StyleGAN2 checkpoint (rosinality .pt)")
    add("--out", required=True, help="latent file to write (.pt)")
    add("--steps", type=int, default=200, help="Adam steps")
    add("--lr", type=float, default=0.05, help="Adam learning rate")
    add("--clip", default=None, help="CLIP weights (or 'tiny') for the perceptual loss")
    add("--clip-weight", type=float, default=1.0, help="weight of the CLIP loss (with --clip)")
    add("--preview", default=None, help="also write [image | reconstruction] as a PNG")
    _add_common(parser)
    return parser


def _project(args: argparse.Namespace) -> list[Path]:
    out = check_output_path(args.out, (".pt",), "--out")
    preview = (
        None if args.preview is None else check_output_path(args.preview, (".png",), "--preview")
    )
    refuse_overwriting_inputs(
        {"--out": out, "--preview": preview}, {"--image": args.image, "--generator": args.generator}
    )
    rgb = read_image(args.image)  # before the models load
    device = resolve_device(args.device)
    generator = load_generator(args.generator, map_location=device)
    target = image_tensor(rgb, generator.size).to(device)
    clip = load_clip(args.clip, device=device) if args.clip else None
    result = project_image(
        generator,
        target,
        args.steps,
        args.lr,
        clip,
        args.clip_weight,
        progress=not args.no_progress,
    )
    written = [save_latent(out, result.w, image=str(args.image), generator=str(args.generator))]
    if preview is not None:
        with atomic_path(preview) as tmp:
            Image.fromarray(strip([target, render(generator, result.w)])).save(tmp, format="PNG")
        written.append(preview)
    if result.losses:
        print(f"loss {result.losses[0]:.4f} -> {result.losses[-1]:.4f}")
    return written


@reports_user_errors("sgvideo project")
def project_main(argv: list[str] | None = None) -> int:
    return _run(project_parser(), argv, _project)


def edit_image_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sgvideo edit-image",
        description="Edit an image with a sound: move its W+ latent toward the sound latent on "
        "chosen style groups, optionally refine with CLIP and mix in a text prompt. Writes the "
        "edited image and <out>_strip.png ([input,] reconstruction, edit).",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", help="image file to project and edit")
    source.add_argument("--latent", help="latent file from `sgvideo project`")
    source.add_argument("--seed", type=int, help="edit a seeded random image")
    add = parser.add_argument
    add("--out", required=True, help="edited image (.png/.jpg)")
    add("--truncation", type=float, default=0.7, help="truncation of the --seed latent")
    add("--project-steps", type=int, default=200, help="projection steps for --image")
    add("--save-latent", default=None, help="also write the edited latent (.pt)")
    _add_edit_options(parser)
    return parser


def _edit_image(args: argparse.Namespace) -> list[Path]:
    return list(
        edit_image(
            args.checkpoint,
            args.audio,
            args.out,
            image=args.image,
            latent=args.latent,
            seed=args.seed,
            settings=_settings(args),
            truncation=args.truncation,
            project_steps=args.project_steps,
            device=args.device,
            save_latent_to=args.save_latent,
            generator_path=args.generator,
            clip=args.clip,
            audio_encoder_path=args.audio_encoder,
            progress=not args.no_progress,
        )
    )


@reports_user_errors("sgvideo edit-image")
def edit_image_main(argv: list[str] | None = None) -> int:
    return _run(edit_image_parser(), argv, _edit_image)


def edit_video_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sgvideo edit-video",
        description="Edit a video with a sound: per-frame projection (warm-started from the "
        "previous frame), the edit of `edit-image` with each frame's sound window, and the new "
        "sound muxed in.",
    )
    add = parser.add_argument
    add("--video", required=True, help="input video")
    add("--out", required=True, help="output video (.mp4)")
    add("--project-steps", type=int, default=100, help="projection steps for the first frame")
    add("--warm-steps", type=int, default=30, help="projection steps for the following frames")
    add("--smoothing", type=float, default=0.6, help="EMA weight of the previous sound latent")
    _add_edit_options(parser)
    return parser


def _edit_video(args: argparse.Namespace) -> list[Path]:
    return [
        edit_video(
            args.checkpoint,
            args.video,
            args.audio,
            args.out,
            settings=_settings(args),
            project_steps=args.project_steps,
            warm_steps=args.warm_steps,
            smoothing=args.smoothing,
            device=args.device,
            generator_path=args.generator,
            clip=args.clip,
            audio_encoder_path=args.audio_encoder,
            progress=not args.no_progress,
        )
    ]


@reports_user_errors("sgvideo edit-video")
def edit_video_main(argv: list[str] | None = None) -> int:
    return _run(edit_video_parser(), argv, _edit_video)
