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
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor
from tqdm import tqdm

from sgvideo.audio import frame_count, read_audio
from sgvideo.checkpoints.stylegan2 import load_generator
from sgvideo.errors import reports_user_errors
from sgvideo.files import (
    atomic_path,
    refuse_overwriting_inputs,
)
from sgvideo.inference.editing import EditSettings, SoundEditor
from sgvideo.inference.latents import load_latent, render, save_latent, seed_latent
from sgvideo.inference.media import (
    VIDEO_SUFFIXES,
    check_output_path,
    image_tensor,
    pil_format,
    read_image,
    resolve_device,
    seeded,
    strip,
)
from sgvideo.inference.projection import project_image
from sgvideo.inference.sound import ExponentialSmoother
from sgvideo.models.clip_model import load_clip
from sgvideo.pixels import IMAGE_SUFFIXES, frames_to_uint8
from sgvideo.video_io import VideoWriter, iter_frames, probe_video

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
        Image.fromarray(frames_to_uint8(images[1:])[0]).save(tmp, format=pil_format(out))
    with atomic_path(strip_path) as tmp:
        Image.fromarray(strip([*before, *images])).save(tmp, format="PNG")
    if save_latent_to is not None:
        save_latent(save_latent_to, edited, audio=str(audio))
    return out, strip_path


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
