"""Stage-2 losses against hand computations: frame motion, Pearson r, motion matching, layout."""

from __future__ import annotations

import pytest
import torch

from sgvideo.losses import (
    detail_distance,
    frame_detail,
    frame_motion,
    layout_distance,
    motion_matching_loss,
    pearson,
)


def clip_with_motion(steps: list[float], size: int = 4) -> torch.Tensor:
    """A "1 t 3 size size" clip whose frame t differs from frame t-1 by steps[t-1] everywhere."""
    levels = torch.tensor([0.0, *steps]).cumsum(0)
    return levels.view(1, -1, 1, 1, 1).expand(1, -1, 3, size, size).clone()


def test_frame_motion_is_the_mean_absolute_difference_to_the_previous_frame() -> None:
    frames = torch.zeros(2, 3, 3, 2, 2)
    frames[0, 1] = 0.5  # frame 1 differs from frame 0 by 0.5 everywhere
    frames[1, 2, 0, 0, 0] = 1.2  # one of 12 values of frame 2 changes by 1.2
    expected = torch.tensor([[0.5, 0.5], [0.0, 0.1]])
    torch.testing.assert_close(frame_motion(frames), expected)


def test_pearson_matches_the_formula_and_is_zero_for_a_constant() -> None:
    a = torch.tensor([1.0, 2.0, 4.0, 7.0])
    b = torch.tensor([2.0, 1.0, 5.0, 6.0])
    am, bm = a - a.mean(), b - b.mean()
    expected = (am * bm).sum() / (am.square().sum().sqrt() * bm.square().sum().sqrt())
    torch.testing.assert_close(pearson(a, b), expected)
    torch.testing.assert_close(pearson(a, 3 * a + 1), torch.tensor(1.0))
    torch.testing.assert_close(pearson(a, -a), torch.tensor(-1.0))
    assert pearson(a, torch.full((4,), 2.0)) == 0


def test_motion_matching_is_zero_for_the_same_motion_and_grows_with_mismatch() -> None:
    real = clip_with_motion([0.1, 0.5, 0.2, 0.05])
    assert motion_matching_loss(real, real).item() == pytest.approx(0.0, abs=1e-6)
    # same shape, twice the amount: only the scale term, (log 2)^2 up to the 1e-4 offset
    double = clip_with_motion([0.2, 1.0, 0.4, 0.1])
    assert motion_matching_loss(double, real).item() == pytest.approx(0.4805, abs=2e-3)
    # reversed profile: Pearson r of [.1 .5 .2 .05] and [.05 .2 .5 .1] is -0.0305...
    backwards = clip_with_motion([0.05, 0.2, 0.5, 0.1])
    moved, reference = torch.tensor([0.05, 0.2, 0.5, 0.1]), torch.tensor([0.1, 0.5, 0.2, 0.05])
    shape = 1 - pearson(moved, reference).item()
    assert motion_matching_loss(backwards, real).item() == pytest.approx(shape, abs=1e-5)


def test_motion_matching_gives_gradients_toward_the_real_profile() -> None:
    real = clip_with_motion([0.1, 0.5, 0.2, 0.05])
    fake = (real + 0.05 * torch.randn_like(real)).requires_grad_()
    loss = motion_matching_loss(fake, real)
    loss.backward()
    stepped = (fake - 0.5 * fake.grad).detach()
    assert motion_matching_loss(stepped, real) < loss


def test_layout_distance_compares_block_means() -> None:
    fake = torch.zeros(2, 3, 8, 8)
    real = torch.zeros(2, 3, 8, 8)
    real[:, :, :4, :4] = 1.0  # the top-left block of a 2 x 2 thumbnail is 1
    fake[:, :, ::2, ::2] = 4.0  # a texture whose block means are all 1
    # 2 x 2 thumbnails: real [[1, 0], [0, 0]], fake [[1, 1], [1, 1]]: 3 of 4 cells differ by 1
    assert layout_distance(fake, real, 2).item() == pytest.approx(0.75)
    assert layout_distance(fake, real, 8).item() > 1.0  # at full size the texture counts
    frames = torch.rand(2, 5, 3, 8, 8)  # "b t 3 h w" works too
    assert layout_distance(frames, frames, 4).item() == 0


def test_frame_detail_is_the_mean_absolute_laplacian_of_each_frame() -> None:
    frames = torch.randn(2, 3, 3, 6, 7, dtype=torch.float64)
    x = frames
    laplacian = (
        x[..., :-2, 1:-1] + x[..., 2:, 1:-1] + x[..., 1:-1, :-2] + x[..., 1:-1, 2:]
        - 4 * x[..., 1:-1, 1:-1]
    )  # fmt: skip
    expected = laplacian.abs().mean(dim=(-3, -2, -1))
    torch.testing.assert_close(frame_detail(frames), expected)
    flat = torch.full((4, 3, 8, 8), 0.3)
    assert frame_detail(flat).abs().max() < 1e-6  # a flat (or smoothly lit) frame has none


def test_detail_distance_is_the_squared_log_ratio_and_pulls_grain_down() -> None:
    real = torch.randn(2, 4, 3, 8, 8)
    assert detail_distance(real, real).item() == pytest.approx(0.0, abs=1e-10)
    doubled = detail_distance(2 * real, real, eps=0.0)
    assert doubled.item() == pytest.approx(torch.log(torch.tensor(2.0)).item() ** 2, rel=1e-5)
    grainy = (2 * real).requires_grad_()
    detail_distance(grainy, real).backward()
    step = grainy.detach() - 0.05 * grainy.grad
    assert detail_distance(step, real) < detail_distance(grainy.detach(), real)
