"""Sound-guided editing: projection, group-restricted edits, CLIP refinement, text mixing, CLIs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.nn import functional as F

from sgvideo.checkpoints.stylegan2 import load_generator
from sgvideo.cli import main as cli_main
from sgvideo.inference.editing import (
    EditSettings,
    SoundEditor,
    clip_guided_refine,
    mix_embeddings,
)
from sgvideo.inference.latents import apply_direction, clip_chosen_latents, render, seed_latent
from sgvideo.inference.projection import project_image
from sgvideo.models.clip_model import clip_image_embed, clip_text_embed, load_clip
from sgvideo.models.latents import style_groups
from sgvideo.pixels import frames_to_uint8
from sgvideo.video_io import read_frames, write_video
from tests.test_generate import noise_wave, probe_streams, write_wav


@pytest.fixture(scope="module")
def generator(tiny_generator_path):
    return load_generator(tiny_generator_path)


def save_png(path: Path, image: torch.Tensor) -> Path:
    Image.fromarray(frames_to_uint8(image[None])[0]).save(path)
    return path


def unchanged_groups(before: torch.Tensor, after: torch.Tensor) -> dict[str, bool]:
    groups = style_groups(before.shape[-2])
    return {name: torch.equal(before[..., s, :], after[..., s, :]) for name, s in groups.items()}


# ---------------------------------------------------------------------------- projection


@pytest.mark.parametrize("with_clip", [False, True])
def test_projection_reduces_the_reconstruction_error(generator, with_clip: bool) -> None:
    target = render(generator, seed_latent(generator, 3, truncation=1.0))
    clip = load_clip("tiny") if with_clip else None
    result = project_image(generator, target, steps=10, lr=0.05, clip=clip, progress=False)
    assert len(result.losses) == 10 and result.w.shape == (8, 32)
    assert result.losses[-1] < 0.6 * result.losses[0]
    start = render(generator, generator.w_avg.expand(8, 32))
    error = F.mse_loss(render(generator, result.w), target)
    assert error < 0.6 * F.mse_loss(start, target)


def test_projection_warm_start_and_shape_checks(generator) -> None:
    w = seed_latent(generator, 1)
    target = render(generator, w)
    assert project_image(generator, target, steps=0, w_init=w, progress=False).w.equal(w)
    with pytest.raises(ValueError, match="image must be '3 32 32'"):
        project_image(generator, target[:, :16], steps=1, progress=False)


# ---------------------------------------------------------------------------- latent edits


def test_apply_direction_moves_only_the_chosen_groups() -> None:
    g = torch.Generator().manual_seed(0)
    w, w_sound = torch.randn(2, 8, 32, generator=g).unbind(0)
    edited = apply_direction(w, w_sound - w, "coarse,fine", 0.5)
    assert unchanged_groups(w, edited) == {"coarse": False, "mid": True, "fine": False}
    layers = style_groups(8)
    for name in ("coarse", "fine"):
        torch.testing.assert_close(
            edited[layers[name]], 0.5 * (w[layers[name]] + w_sound[layers[name]])
        )
    torch.testing.assert_close(
        apply_direction(w, w_sound - w, ["mid"], 1.0)[layers["mid"]], w_sound[layers["mid"]]
    )
    batch = apply_direction(torch.stack([w, w]), torch.ones(2, 8, 32), "mid", 2.0)
    torch.testing.assert_close(batch[:, layers["mid"]], (w[layers["mid"]] + 2.0).expand(2, 3, 32))
    assert torch.equal(batch[:, :3], w[:3].expand(2, 3, 32))
    with pytest.raises(ValueError, match="style groups must be among"):
        apply_direction(w, w_sound - w, "coarse,middle", 0.5)


def test_clip_refinement_lowers_the_loss_on_the_chosen_groups_only(generator) -> None:
    clip = load_clip("tiny")
    start = seed_latent(generator, 1)
    target = clip_image_embed(clip, render(generator, seed_latent(generator, 2))[None])[0]
    result = clip_guided_refine(
        generator, clip, start, target, "mid", steps=8, lr=0.05, progress=False
    )
    assert unchanged_groups(start, result.w) == {"coarse": True, "mid": False, "fine": True}
    assert result.losses[-1] < result.losses[0]

    # the returned latent is the one after the last step: its distance is below the start's
    def distance(w):
        return 1 - (clip_image_embed(clip, render(generator, w)[None])[0] * target).sum()

    assert distance(result.w) < distance(start)


def test_text_and_sound_embeddings_mix_on_the_sphere() -> None:
    sound = F.normalize(torch.tensor([1.0, 0.0, 0.0]), dim=0)
    text = torch.tensor([0.0, 1.0, 0.0])
    torch.testing.assert_close(mix_embeddings(sound, text, 0.0), sound)
    torch.testing.assert_close(mix_embeddings(sound, text, 1.0), text)
    torch.testing.assert_close(
        mix_embeddings(sound, text, 0.5), torch.tensor([1.0, 1.0, 0.0]) / 2**0.5
    )
    with pytest.raises(ValueError, match=r"mix must be in \[0, 1\]"):
        EditSettings(mix=1.5)


def test_text_latent_is_the_clip_nearest_sample(generator) -> None:
    clip = load_clip("tiny")
    w = clip_chosen_latents(generator, clip, ["a photo of fire"], samples=6, seed=3)[0]
    z = torch.randn(6, 32, generator=torch.Generator().manual_seed(3))
    pool = generator.truncate(generator.mapping(z), 0.7)
    images = render(generator, pool[:, None].expand(6, 8, 32))
    similarity = clip_image_embed(clip, images) @ clip_text_embed(clip, ["a photo of fire"])[0]
    torch.testing.assert_close(w, pool[similarity.argmax()].expand(8, 32))


def test_sound_and_text_direction_mix(inversion_ckpt) -> None:
    editor = SoundEditor.from_checkpoint(inversion_ckpt)
    g = editor.generator
    w = seed_latent(g, 4)
    w_sound, _ = editor.clip_sound(noise_wave(1.2), need_embedding=False)
    settings = EditSettings(groups="fine", strength=0.8, text="a photo of rain", mix=0.25)
    settings.text_samples = 5
    edited = editor.edit(w, w_sound, None, settings, progress=False)
    w_text = clip_chosen_latents(g, editor.clip, ["a photo of rain"], samples=5)[0]
    direction = 0.75 * (w_sound - w) + 0.25 * (w_text - w)
    torch.testing.assert_close(edited, apply_direction(w, direction, "fine", 0.8))
    assert unchanged_groups(w, edited) == {"coarse": True, "mid": True, "fine": False}


# ---------------------------------------------------------------------------- command lines


def test_project_cli_writes_the_latent_and_a_preview(
    generator, tiny_generator_path, tmp_path
) -> None:
    image = save_png(tmp_path / "in.png", render(generator, seed_latent(generator, 5)))
    out, preview = tmp_path / "w.pt", tmp_path / "preview.png"
    argv = ["project", "--image", str(image), "--generator", str(tiny_generator_path)]
    argv += ["--steps", "5", "--out", str(out), "--preview", str(preview), "--no-progress"]
    assert cli_main(argv) == 0
    saved = torch.load(out, weights_only=True)
    assert saved["w_plus"].shape == (8, 32) and saved["image"] == str(image)
    assert Image.open(preview).size == (64, 32)


def test_edit_image_cli_edits_only_the_chosen_groups(generator, inversion_ckpt, tmp_path) -> None:
    audio = write_wav(tmp_path / "rain.wav", 1.0)
    start = tmp_path / "start.pt"
    torch.save({"w_plus": seed_latent(generator, 2)}, start)
    out, latent = tmp_path / "edited.png", tmp_path / "edited.pt"
    argv = ["edit-image", "--latent", str(start), "--audio", str(audio)]
    argv += ["--checkpoint", str(inversion_ckpt), "--groups", "coarse", "--strength", "0.7"]
    argv += ["--optimize-steps", "2", "--text", "a photo of rain", "--mix", "0.5"]
    argv += ["--text-samples", "4", "--out", str(out), "--save-latent", str(latent)]
    assert cli_main([*argv, "--no-progress"]) == 0
    edited = torch.load(latent, weights_only=True)["w_plus"]
    before = torch.load(start, weights_only=True)["w_plus"]
    assert unchanged_groups(before, edited) == {"coarse": False, "mid": True, "fine": True}
    pixels = np.asarray(Image.open(out).convert("RGB"))
    assert pixels.shape == (32, 32, 3)
    rendered = frames_to_uint8(render(generator, edited)[None])[0]  # alone, not in a batch of 2
    assert np.abs(pixels.astype(int) - rendered).max() <= 1
    strip = np.asarray(Image.open(tmp_path / "edited_strip.png"))
    assert strip.shape == (32, 64, 3) and np.array_equal(strip[:, 32:], pixels)


def test_edit_image_from_an_image_shows_it_in_the_strip(
    generator, inversion_ckpt, tmp_path
) -> None:
    image = save_png(tmp_path / "in.png", render(generator, seed_latent(generator, 6)))
    audio = write_wav(tmp_path / "a.wav", 0.4)
    argv = ["edit-image", "--image", str(image), "--audio", str(audio), "--project-steps", "2"]
    argv += ["--checkpoint", str(inversion_ckpt), "--out", str(tmp_path / "e.jpg"), "--no-progress"]
    assert cli_main(argv) == 0
    strip = np.asarray(Image.open(tmp_path / "e_strip.png"))
    assert strip.shape == (32, 96, 3)
    assert np.array_equal(strip[:, :32], np.asarray(Image.open(image)))


def test_edit_video_cli(generator, inversion_ckpt, tmp_path) -> None:
    frames = frames_to_uint8(
        render(generator, torch.stack([seed_latent(generator, i) for i in range(5)]))
    )
    video = write_video(tmp_path / "in.mp4", frames, fps=10)
    audio = write_wav(tmp_path / "new.wav", 2.0)
    out = tmp_path / "out.mp4"
    argv = ["edit-video", "--video", str(video), "--audio", str(audio), "--out", str(out)]
    argv += ["--checkpoint", str(inversion_ckpt), "--groups", "fine", "--project-steps", "3"]
    argv += ["--warm-steps", "1", "--no-progress"]
    assert cli_main(argv) == 0
    edited = read_frames(out)
    assert edited.shape == (5, 32, 32, 3)
    info = probe_streams(out)
    assert info["video_seconds"] == pytest.approx(0.5)
    assert info["audio_seconds"] == pytest.approx(0.5, abs=1024 / 44100 + 1e-3)  # cut to the video


@pytest.mark.parametrize(
    ("tool", "extra", "message"),
    [
        ("edit-image", ["--seed", "1", "--groups", "top"], "style groups must be among"),
        (
            "edit-image",
            ["--seed", "1", "--checkpoint", "{align_ckpt}"],
            "expected a 'inversion'",
        ),
        ("edit-image", ["--image", "{tmp}/bad.png"], "cannot read as an image"),
        ("edit-image", ["--latent", "{tmp}/bad_latent.pt"], "expected a 'w_plus' W+ latent"),
        ("edit-image", ["--seed", "1", "--out", "{tmp}/no/e.png"], "output folder does not exist"),
        (
            "edit-video",
            ["--video", "{tmp}/bad.png", "--out", "{tmp}/o.mp4"],
            "cannot decode the video",
        ),
    ],
)
def test_edit_bad_input_is_a_clear_error(
    tool, extra, message, inversion_ckpt, align_ckpt, tmp_path, capsys
) -> None:
    (tmp_path / "bad.png").write_bytes(b"not an image")
    torch.save({"w_plus": torch.zeros(3, 32)}, tmp_path / "bad_latent.pt")
    audio = write_wav(tmp_path / "a.wav", 0.3)
    argv = [tool, "--audio", str(audio), "--checkpoint", str(inversion_ckpt)]
    if tool == "edit-image":
        argv += ["--out", str(tmp_path / "e.png")]
    argv += [a.format(tmp=tmp_path, align_ckpt=align_ckpt) for a in extra]
    before = {p.name for p in tmp_path.iterdir()}
    assert cli_main([*argv, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sgvideo {tool}: error:") and message in err
    assert {p.name for p in tmp_path.iterdir()} == before


def test_project_missing_generator_is_a_clear_error(tmp_path, capsys) -> None:
    image = tmp_path / "in.png"
    Image.new("RGB", (40, 30)).save(image)
    argv = ["project", "--image", str(image), "--generator", str(tmp_path / "g.pt")]
    assert cli_main([*argv, "--out", str(tmp_path / "w.pt")]) == 2
    assert "StyleGAN2 generator checkpoint not found" in capsys.readouterr().err
