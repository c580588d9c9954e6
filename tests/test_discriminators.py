"""Image and video discriminators: shapes over sizes and lengths, what they look at, errors."""

from __future__ import annotations

import pytest
import torch

from sgvideo.models.discriminators import ImageDiscriminator, VideoDiscriminator


@pytest.mark.parametrize("size", [32, 64])
def test_image_discriminator_one_logit_per_frame(size: int) -> None:
    d = ImageDiscriminator(size, channels=8, max_channels=16)
    frames = torch.randn(3, 3, size, size)
    logits = d(frames)
    assert logits.shape == (3,)
    # frames are judged independently: changing one frame changes only its logit
    other = frames.clone()
    other[1] = torch.randn(3, size, size)
    changed = (d(other) - logits).abs() > 1e-6
    assert changed.tolist() == [False, True, False]


@pytest.mark.parametrize(("size", "t"), [(32, 2), (32, 6), (64, 3)])
def test_video_discriminator_keeps_time(size: int, t: int) -> None:
    d = VideoDiscriminator(size, channels=4, max_channels=8)
    clips = torch.randn(2, 3, t, size, size)
    logits = d(clips)
    assert logits.shape == (2, t)
    assert torch.isfinite(logits).all()


def test_video_discriminator_sees_frame_order() -> None:
    d = VideoDiscriminator(32, channels=4, max_channels=8)
    clips = torch.randn(1, 3, 4, 32, 32)
    shuffled = clips[:, :, [2, 0, 3, 1]]
    # a per-frame judge would give the same logits, permuted
    assert not torch.allclose(d(shuffled), d(clips)[:, [2, 0, 3, 1]], atol=1e-5)


def test_gradients_reach_every_parameter_and_the_input() -> None:
    for d, x in [
        (ImageDiscriminator(32, channels=4, max_channels=8), torch.randn(2, 3, 32, 32)),
        (VideoDiscriminator(32, channels=4, max_channels=8), torch.randn(2, 3, 3, 32, 32)),
    ]:
        x.requires_grad_(True)
        d(x).square().mean().backward()
        assert x.grad is not None and x.grad.abs().sum() > 0
        for name, p in d.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("size", [16, 48, 100])
def test_bad_size_is_a_clear_error(size: int) -> None:
    for cls in (ImageDiscriminator, VideoDiscriminator):
        with pytest.raises(ValueError, match="power of two >= 32"):
            cls(size)


def test_wrong_input_shape_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="'b 3 h w' RGB input at 32x32"):
        ImageDiscriminator(32, channels=4)(torch.randn(2, 3, 64, 64))
    with pytest.raises(ValueError, match="'b 3 t h w' RGB input at 32x32"):
        VideoDiscriminator(32, channels=4)(torch.randn(2, 4, 32, 32))
