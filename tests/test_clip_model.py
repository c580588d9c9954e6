"""CLIP loading (local file or tiny, never the network) and the tensor-side helpers."""

from __future__ import annotations

import clip
import clip.clip
import pytest
import torch
from torch.nn import functional as F

from sgvideo.models.clip_model import (
    CLIP_ENV,
    CLIP_MEAN,
    CLIP_STD,
    clip_embed_dim,
    clip_image_embed,
    clip_text_embed,
    load_clip,
    prompts_for,
)


@pytest.fixture(scope="module")
def tiny():
    return load_clip("tiny")


@pytest.fixture(autouse=True)
def _no_download(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("tried to download CLIP weights")

    monkeypatch.setattr(clip.clip, "_download", refuse)


def test_tiny_is_frozen_seeded_float32_and_leaves_global_rng(tiny):
    state = torch.get_rng_state()
    again = load_clip("tiny")
    assert torch.equal(state, torch.get_rng_state())
    assert not tiny.training and not any(p.requires_grad for p in tiny.parameters())
    assert all(p.dtype == torch.float32 for p in tiny.parameters())
    for a, b in zip(tiny.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert clip_embed_dim(tiny) == 32 and tiny.visual.input_resolution == 32


def test_image_embed_matches_reference_preprocessing(tiny):
    images = torch.rand(3, 3, 32, 32) * 2 - 1
    mean, std = torch.tensor(CLIP_MEAN).view(3, 1, 1), torch.tensor(CLIP_STD).view(3, 1, 1)
    expected = F.normalize(tiny.encode_image(((images + 1) / 2 - mean) / std), dim=-1)
    got = clip_image_embed(tiny, images)
    assert got.shape == (3, 32)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(got.norm(dim=-1), torch.ones(3))
    raw = clip_image_embed(tiny, images, normalize=False)
    torch.testing.assert_close(F.normalize(raw, dim=-1), got)


def test_image_embed_resizes_to_input_resolution(tiny):
    colours = torch.rand(2, 3, 1, 1) * 2 - 1
    small, large = colours.expand(2, 3, 32, 32), colours.expand(2, 3, 96, 96)
    torch.testing.assert_close(
        clip_image_embed(tiny, large), clip_image_embed(tiny, small), atol=1e-5, rtol=1e-5
    )


def test_image_embed_is_differentiable(tiny):
    images = (torch.rand(2, 3, 64, 64) * 2 - 1).requires_grad_()
    clip_image_embed(tiny, images)[:, 0].sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_image_embed_rejects_bad_shapes(tiny):
    with pytest.raises(ValueError, match="'b 3 h w'"):
        clip_image_embed(tiny, torch.zeros(3, 32, 32))


def test_text_embed_matches_encode_text(tiny):
    prompts = prompts_for(["rain", "fire_crackling", "wind"])
    assert prompts == ["a photo of rain", "a photo of fire crackling", "a photo of wind"]
    got = clip_text_embed(tiny, prompts)
    expected = F.normalize(tiny.encode_text(clip.tokenize(prompts)), dim=-1)
    torch.testing.assert_close(got, expected)
    assert not got.requires_grad
    sims = got @ got.T
    assert (sims - torch.eye(3)).abs().max() < 0.99  # distinct prompts, distinct embeddings
    with pytest.raises(ValueError, match="non-empty list"):
        clip_text_embed(tiny, "a photo of rain")


def test_prompt_template():
    assert prompts_for(["thunder"], "the sound of {}") == ["the sound of thunder"]
    with pytest.raises(ValueError, match="must contain"):
        prompts_for(["thunder"], "no placeholder")


def test_local_file_round_trip(tiny, tmp_path):
    path = tmp_path / "clip.pt"
    torch.save(tiny.state_dict(), path)
    loaded = load_clip(path)
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    # float32 weights stay float32 (build_model alone would round them to fp16)
    torch.testing.assert_close(clip_image_embed(loaded, images), clip_image_embed(tiny, images))
    assert not any(p.requires_grad for p in loaded.parameters())


def test_env_variable_gives_the_path(tiny, tmp_path, monkeypatch):
    path = tmp_path / "clip.pt"
    torch.save(tiny.state_dict(), path)
    monkeypatch.setenv(CLIP_ENV, str(path))
    assert clip_embed_dim(load_clip(None)) == 32


def test_missing_weights_are_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv(CLIP_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=r"CLIP weights not found: .*nope\.pt.*ViT-B-32"):
        load_clip(tmp_path / "nope.pt")
    with pytest.raises(FileNotFoundError, match=CLIP_ENV):
        load_clip(None)
    # A model name is not a file: refused, never downloaded (see _no_download).
    with pytest.raises(FileNotFoundError, match="ViT-B-32.pt"):
        load_clip("ViT-B/32")


def test_wrong_file_is_a_clear_error(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="not an OpenAI CLIP checkpoint"):
        load_clip(path)
    path.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a CLIP checkpoint"):
        load_clip(path)
