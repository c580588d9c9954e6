"""The sound-paced noise drift and scene pan: the shifts themselves, the speed the sound sets,
the generator's scrolled noise and panned scene, and the trajectory net that carries them."""

from __future__ import annotations

import math

import pytest
import torch
from torch.autograd import gradcheck

from sgvideo.models.noise_drift import (
    DRIFT_AMPLITUDE_POWER,
    MAX_DRIFT_SPEED,
    MAX_PAN_SPEED,
    PacedScroll,
    pan_features,
    shift_noise,
)
from sgvideo.models.stylegan2 import Generator
from sgvideo.models.stylegan2_layers import NoiseInjection
from sgvideo.models.trajectory import TrajectoryGenerator


@pytest.mark.parametrize("rows", [4, 8, 32])
def test_whole_row_offsets_roll_the_rows(rows: int) -> None:
    noise = torch.randn(1, 1, rows, rows)
    offsets = torch.tensor([0.0, 1.0, 3.0, -1.0]) / rows  # frame heights
    shifted = shift_noise(noise, offsets)
    assert shifted.shape == (4, 1, rows, rows)
    for image, rolled in zip(shifted, (0, 1, 3, -1), strict=True):
        torch.testing.assert_close(image, torch.roll(noise[0], rolled, dims=-2), atol=1e-5, rtol=0)


def test_whole_column_pans_roll_the_columns_of_every_image_by_its_own_offset() -> None:
    features = torch.randn(3, 5, 8, 8)
    panned = pan_features(features, torch.tensor([0.0, 1.0, -2.0]) / 8)  # 1/8 frame a column
    for image, feature, columns in zip(panned, features, (0, 1, -2), strict=True):
        torch.testing.assert_close(image, torch.roll(feature, columns, dims=-1), atol=1e-5, rtol=0)


def test_fractional_offsets_move_smooth_images_exactly_and_keep_white_noise_statistics() -> None:
    rows = torch.arange(16, dtype=torch.float64)
    wave = torch.cos(2 * math.pi * 3 * rows / 16)  # 3 cycles down the image
    image = wave[:, None].expand(16, 16)[None, None]
    shifted = shift_noise(image, torch.tensor([2.5 / 16], dtype=torch.float64))
    expected = torch.cos(2 * math.pi * 3 * (rows - 2.5) / 16)[:, None].expand(16, 16)
    torch.testing.assert_close(shifted[0, 0], expected)
    noise = torch.randn(1, 1, 128, 128, generator=torch.Generator().manual_seed(0))
    moved = shift_noise(noise, torch.tensor([0.5, 17.25]) / 128)
    for image in moved:  # the spectrum's magnitude is kept, but for the one Nyquist row
        assert abs(image.std().item() - noise.std().item()) < 0.02


def test_the_shift_is_differentiable_in_the_offset() -> None:
    noise = torch.randn(1, 1, 8, 8, dtype=torch.float64)
    offset = torch.tensor([0.03, 0.17], dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda o: shift_noise(noise, o), (offset,))


@pytest.mark.parametrize("max_speed", [MAX_DRIFT_SPEED, MAX_PAN_SPEED])
def test_the_speed_follows_a_power_of_the_amplitude_below_the_cap_and_offsets_sum_it(
    max_speed: float,
) -> None:
    drift = PacedScroll(audio_dim=4, max_speed=max_speed)
    quiet, louder = torch.full((4,), 0.0), torch.full((4,), 0.125)  # 10 dB apart (dB / 80)
    ratio = drift.speed(louder) / drift.speed(quiet)
    expected = 10 ** (DRIFT_AMPLITUDE_POWER / 2)  # the amplitude x 10^(1/2), to that power
    assert ratio.item() == pytest.approx(expected, rel=0.02)
    assert drift.speed(torch.full((4,), 0.4)).item() == pytest.approx(1 / 32)  # frame a step
    loudest = drift.speed(torch.full((4,), 10.0))
    assert max_speed * 0.99 < loudest.item() <= max_speed
    audio = torch.randn(2, 5, 4) * 0.2
    offsets = drift.offsets(audio, start=torch.tensor([0.25, -0.5]))
    expected = torch.tensor([0.25, -0.5])[:, None] + torch.cumsum(drift.speed(audio), dim=1)
    torch.testing.assert_close(offsets, expected)
    assert (offsets[:, 1:] > offsets[:, :-1]).all()  # the noise only moves on
    from_the_start = drift.offsets(audio)  # the first step stays put, then the same steps
    torch.testing.assert_close(from_the_start[:, 0], torch.zeros(2))
    torch.testing.assert_close(
        from_the_start[:, 1:] - from_the_start[:, :1], offsets[:, 1:] - offsets[:, :1]
    )
    with pytest.raises(ValueError, match="audio_dim must be >= 1"):
        PacedScroll(0)
    with pytest.raises(ValueError, match="max_speed must be above 0.03125 frame widths a step"):
        PacedScroll(4, max_speed=1 / 32)


def test_generator_scrolls_its_noise_and_a_whole_turn_is_the_still_image() -> None:
    torch.manual_seed(0)
    generator = Generator(16, style_dim=16, n_mlp=1, channel_multiplier=1, channel_max=16)
    for module in generator.modules():
        if isinstance(module, NoiseInjection):  # new layers add no noise: give them some
            module.weight.data.fill_(0.5)
    w = generator.mean_latent(16).expand(3, generator.n_latent, 16).clone()
    with torch.no_grad():
        still = generator.synthesis(w)
        same = generator.synthesis(w, noise_offset=torch.tensor([0.0, 1.0, 2.0]))  # whole turns
        moved = generator.synthesis(w, noise_offset=torch.full((3,), 0.25))
        plain = generator.synthesis(w, "none", torch.full((3,), 0.25))
    torch.testing.assert_close(same, still, atol=1e-4, rtol=0)
    assert (moved - still).abs().mean() > 1e-3  # the noise draws part of the picture
    torch.testing.assert_close(plain, generator.synthesis(w, "none").detach())
    with pytest.raises(ValueError, match=r"one per image \(3\)"):
        generator.synthesis(w, noise_offset=torch.zeros(2))


def test_generator_pans_its_scene_and_a_whole_turn_is_the_still_image() -> None:
    torch.manual_seed(0)
    generator = Generator(16, style_dim=16, n_mlp=1, channel_multiplier=1, channel_max=16)
    w = generator.mean_latent(16).expand(3, generator.n_latent, 16).clone()
    with torch.no_grad():
        still = generator.synthesis(w)
        same = generator.synthesis(w, pan_offset=torch.tensor([0.0, 1.0, -1.0]))  # whole turns
        moved = generator.synthesis(w, pan_offset=torch.tensor([0.125, 0.25, 0.5]))
    torch.testing.assert_close(same, still, atol=1e-4, rtol=0)
    assert (moved - still).abs().mean() > 1e-2
    # the 8 px features move as a whole: the picture's column means travel with the pan
    columns = lambda x: x.mean(dim=(1, 2))
    travelled = columns(moved)[2]  # half a turn right: 8 px of 16
    assert torch.corrcoef(torch.stack([travelled, torch.roll(columns(still)[2], 8)]))[0, 1] > 0.7
    with pytest.raises(ValueError, match=r"one per image \(3\)"):
        generator.synthesis(w, pan_offset=torch.zeros(2))


def test_trajectory_net_carries_the_drift_and_the_pan_in_its_config() -> None:
    net = TrajectoryGenerator(4, 8, hidden=8, num_layers=1, audio_dim=6, noise_drift=True)
    assert isinstance(net.noise_drift, PacedScroll)
    assert net.config["noise_drift"] is True
    rebuilt = TrajectoryGenerator(**net.config)
    rebuilt.load_state_dict(net.state_dict())
    assert "noise_drift.loudness.weight" in net.state_dict()
    assert TrajectoryGenerator(4, 8, hidden=8, num_layers=1, audio_dim=6).noise_drift is None
    with pytest.raises(ValueError, match="noise_drift needs audio features"):
        TrajectoryGenerator(4, 8, hidden=8, num_layers=1, audio_dim=0, noise_drift=True)
    panning = TrajectoryGenerator(4, 8, hidden=8, num_layers=1, audio_dim=6, scene_pan=True)
    assert isinstance(panning.scene_pan, PacedScroll) and panning.noise_drift is None
    assert (
        panning.scene_pan.max_speed == MAX_PAN_SPEED
        and net.noise_drift.max_speed == MAX_DRIFT_SPEED
    )
    assert panning.config["scene_pan"] is True and net.config["scene_pan"] is False
    TrajectoryGenerator(**panning.config).load_state_dict(panning.state_dict())
    assert "scene_pan.loudness.weight" in panning.state_dict()
    audio = torch.randn(2, 5, 6) * 0.2
    noise, pan = panning.scroll_offsets(audio)
    assert noise is None
    torch.testing.assert_close(pan, panning.scene_pan.offsets(audio))
    with pytest.raises(ValueError, match="scene_pan needs audio features"):
        TrajectoryGenerator(4, 8, hidden=8, num_layers=1, audio_dim=0, scene_pan=True)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_scrolled_noise_on_cuda_matches_the_cpu() -> None:
    torch.manual_seed(0)
    generator = Generator(32, style_dim=16, n_mlp=1, channel_multiplier=1, channel_max=16)
    for module in generator.modules():
        if isinstance(module, NoiseInjection):
            module.weight.data.fill_(0.5)
    w = generator.mean_latent(16).expand(4, generator.n_latent, 16).clone()
    offsets = torch.tensor([0.0, 0.4, 3.7, 11.2])
    with torch.no_grad():
        cpu = generator.synthesis(w, noise_offset=offsets)
        gpu = generator.cuda().synthesis(w.cuda(), noise_offset=offsets.cuda())
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=1e-4)
