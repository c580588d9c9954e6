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

import os
from dataclasses import dataclass
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
from sgvideo.tool_cli import parse_function_args
from sgvideo.video_io import VideoWriter, iter_frames, probe_video

# ---------------------------------------------------------------------------- Python API


@dataclass
class EditorWeights:
    """Where the editor runs and which networks it loads beside the stage-1 checkpoint (options
    --device, --generator, --clip, --audio-encoder).

    Args:
        device: cpu, cuda, ...
        generator_path: StyleGAN2 .pt (default: the checkpoint's path).
        clip: CLIP weights or 'tiny' (default: the checkpoint's).
        audio_encoder_path: stage-0 checkpoint (default: the checkpoint's).
    """

    device: str = "cpu"
    generator_path: str | None = None
    clip: str | None = None
    audio_encoder_path: str | None = None

    def load(self, checkpoint: str | os.PathLike) -> SoundEditor:
        """The `SoundEditor` of a stage-1 checkpoint with these networks, on this device."""
        return SoundEditor.from_checkpoint(
            checkpoint,
            resolve_device(self.device),
            self.generator_path,
            self.clip,
            self.audio_encoder_path,
        )


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
    save_latent_to: str | os.PathLike | None = None,
    weights: EditorWeights | None = None,
    progress: bool = True,
) -> tuple[Path, Path]:
    """Edit an image (file, latent file or seed: exactly one) with a sound; writes the edited
    image to `out` and a before/after strip beside it (`<out stem>_strip.png`: [the input
    image,] its reconstruction G(w), the edit). Returns both paths.

    Args:
        checkpoint: stage-1 inversion checkpoint.
        audio: the sound that guides the edit.
        out: edited image (.png/.jpg).
        image: image file to project and edit.
        latent: latent file from `sgvideo project`.
        seed: edit a seeded random image.
        settings: the edit (options --groups, --strength, --text, --mix, --optimize-steps,
            --lr, --l2-weight, --text-samples; see EditSettings).
        truncation: truncation of the --seed latent.
        project_steps: projection steps for --image.
        save_latent_to: also write the edited latent (.pt); option --save-latent.
        weights: device and networks (see EditorWeights).
        progress: show progress bars (--no-progress: none).
    """
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
    editor = (weights or EditorWeights()).load(checkpoint)
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
    weights: EditorWeights | None = None,
    progress: bool = True,
) -> Path:
    """Edit every frame of `video` with the sound of `audio` and write it with that sound.

    Frame t is projected into W+ (`project_steps` from w_avg for the first frame, then
    `warm_steps` from the previous frame's latent), moved toward the sound latent of the audio
    window centred on its timestamp (sound latents smoothed like `sgvideo generate`'s), and
    refined if asked (warm-started from the previous frame's edit). Frames are rendered at the
    generator's size and streamed to `out`; the audio is cut to the video's duration.

    Args:
        checkpoint: stage-1 inversion checkpoint.
        video: input video.
        audio: the sound that guides the edit.
        out: output video (.mp4).
        settings: the edit (options --groups, --strength, --text, --mix, --optimize-steps,
            --lr, --l2-weight, --text-samples; see EditSettings).
        project_steps: projection steps for the first frame.
        warm_steps: projection steps for the following frames.
        smoothing: EMA weight of the previous sound latent.
        weights: device and networks (see EditorWeights).
        progress: show progress bars (--no-progress: none).
    """
    settings = settings or EditSettings()
    out = check_output_path(out, VIDEO_SUFFIXES, "--out")
    refuse_overwriting_inputs(
        {"--out": out}, {"--video": video, "--audio": audio, "--checkpoint": checkpoint}
    )
    info = probe_video(video)  # inputs are checked before the models load
    sound = read_audio(audio)
    smoother = ExponentialSmoother(smoothing)
    editor = (weights or EditorWeights()).load(checkpoint)
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


def project(
    image: str | os.PathLike,
    generator: str | os.PathLike,
    out: str | os.PathLike,
    steps: int = 200,
    lr: float = 0.05,
    clip: str | None = None,
    clip_weight: float = 1.0,
    preview: str | os.PathLike | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> list[Path]:
    """Invert an image into StyleGAN2's W+ by optimisation; returns the files written.

    Args:
        image: image file (resized and centre-cropped to G's size).
        generator: StyleGAN2 checkpoint (rosinality .pt).
        out: latent file to write (.pt).
        steps: Adam steps.
        lr: Adam learning rate.
        clip: CLIP weights (or 'tiny') for the perceptual loss.
        clip_weight: weight of the CLIP loss (with --clip).
        preview: also write [image | reconstruction] as a PNG.
        device: cpu, cuda, ...
        progress: show a progress bar (--no-progress: none).
    """
    out = check_output_path(out, (".pt",), "--out")
    preview = None if preview is None else check_output_path(preview, (".png",), "--preview")
    refuse_overwriting_inputs(
        {"--out": out, "--preview": preview}, {"--image": image, "--generator": generator}
    )
    rgb = read_image(image)  # before the models load
    torch_device = resolve_device(device)
    g = load_generator(generator, map_location=torch_device)
    target = image_tensor(rgb, g.size).to(torch_device)
    clip_model = load_clip(clip, device=torch_device) if clip else None
    result = project_image(g, target, steps, lr, clip_model, clip_weight, progress=progress)
    written = [save_latent(out, result.w, image=str(image), generator=str(generator))]
    if preview is not None:
        with atomic_path(preview) as tmp:
            Image.fromarray(strip([target, render(g, result.w)])).save(tmp, format="PNG")
        written.append(preview)
    if result.losses:
        print(f"loss {result.losses[0]:.4f} -> {result.losses[-1]:.4f}")
    return written


# ---------------------------------------------------------------------------- command lines

SETTINGS = (
    "groups",
    "strength",
    "text",
    "mix",
    "optimize-steps",
    "lr",
    "l2-weight",
    "text-samples",
)
EDIT_FLAGS = {
    "device": "weights.device",
    "generator": "weights.generator_path",
    "clip": "weights.clip",
    "audio-encoder": "weights.audio_encoder_path",
    # the parameter names these options had before they were grouped in EditorWeights
    "generator_path": "weights.generator_path",
    "generator-path": "weights.generator_path",
    "audio_encoder_path": "weights.audio_encoder_path",
    "audio-encoder-path": "weights.audio_encoder_path",
    **{name: "settings." + name.replace("-", "_") for name in SETTINGS},
}
EDIT_IMAGE_HELP = (
    "Edit an image with a sound: move its W+ latent toward the sound latent on chosen style "
    "groups, optionally refine with CLIP and mix in a text prompt. Writes the edited image and "
    "<out>_strip.png ([input,] reconstruction, edit)."
)
EDIT_VIDEO_HELP = (
    "Edit a video with a sound: per-frame projection (warm-started from the previous frame), the "
    "edit of `edit-image` with each frame's sound window, and the new sound muxed in."
)


def _run(function, argv: list[str] | None, prog: str, description: str, flags=None) -> int:
    """Parse `argv` into `function`'s arguments, run it and print what it wrote."""
    kwargs = parse_function_args(function, argv, prog, description, flags or {})
    if isinstance(kwargs, int):
        return kwargs
    written = function(**kwargs)
    for path in [written] if isinstance(written, Path) else written:
        print(f"wrote {path}")
    return 0


@reports_user_errors("sgvideo project")
def project_main(argv: list[str] | None = None) -> int:
    return _run(project, argv, "sgvideo project", "Invert an image into StyleGAN2's W+.")


@reports_user_errors("sgvideo edit-image")
def edit_image_main(argv: list[str] | None = None) -> int:
    flags = {**EDIT_FLAGS, "save-latent": "save_latent_to"}
    return _run(edit_image, argv, "sgvideo edit-image", EDIT_IMAGE_HELP, flags)


@reports_user_errors("sgvideo edit-video")
def edit_video_main(argv: list[str] | None = None) -> int:
    return _run(edit_video, argv, "sgvideo edit-video", EDIT_VIDEO_HELP, EDIT_FLAGS)
