"""TrajectoryGenerator: shapes, the residual recurrence, streaming equals rollout, gradients."""

from __future__ import annotations

import pytest
import torch

from sgvideo.models.latents import style_groups
from sgvideo.models.trajectory import TrajectoryGenerator

N_LATENT, STYLE = 8, 16


def _inputs(b: int = 2, t: int = 5, dtype: torch.dtype = torch.float32):
    w0 = torch.randn(b, N_LATENT, STYLE, dtype=dtype)
    sound = torch.randn(b, t, N_LATENT, STYLE, dtype=dtype)
    return w0, sound


@pytest.mark.parametrize("t", [1, 2, 6])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_rollout_shape_and_initial_trajectory_near_start(t: int, bidirectional: bool) -> None:
    net = TrajectoryGenerator(N_LATENT, STYLE, hidden=12, num_layers=2, bidirectional=bidirectional)
    w0, sound = _inputs(t=t)
    out = net.rollout(w0, sound)
    assert out.shape == (2, t, N_LATENT, STYLE)
    drift = (out - w0.unsqueeze(1)).abs().max().item()
    assert 0 < drift < 0.05 * (t + 1)


def test_rollout_is_start_plus_cumulative_residuals() -> None:
    net = TrajectoryGenerator(N_LATENT, STYLE, hidden=12, num_layers=2)
    with torch.no_grad():
        for head in net.heads.values():
            head.weight.normal_()
    w0, sound = _inputs(t=4)
    out = net.rollout(w0, sound)
    deltas = torch.diff(torch.cat([w0.unsqueeze(1), out], dim=1), dim=1)
    # frame 0 moves off w0 too, and each frame's residual only touches its group's layers
    assert deltas[:, 0].abs().amin(dim=(0, 2)).gt(0).all()
    with torch.no_grad():
        net.heads["fine"].weight.zero_()
        net.heads["fine"].bias.fill_(0.5)
    out = net.rollout(w0, sound)
    fine = style_groups(N_LATENT)["fine"]
    expected = w0[:, fine].unsqueeze(1) + 0.5 * torch.arange(1, 5).view(1, 4, 1, 1)
    torch.testing.assert_close(out[:, :, fine], expected)


def test_bidirectional_uses_future_sound_unidirectional_does_not() -> None:
    w0, sound = _inputs(t=4)
    later = sound.clone()
    later[:, -1] += 1.0
    for bidirectional, first_frame_changes in [(True, True), (False, False)]:
        net = TrajectoryGenerator(N_LATENT, STYLE, 8, num_layers=1, bidirectional=bidirectional)
        changed = not torch.allclose(net(w0, sound)[:, 0], net(w0, later)[:, 0], atol=0, rtol=0)
        assert changed is first_frame_changes


@pytest.mark.parametrize("noise_dim", [0, 3])
def test_stepping_equals_rollout_unidirectional(noise_dim: int) -> None:
    net = TrajectoryGenerator(
        N_LATENT, STYLE, hidden=10, num_layers=3, bidirectional=False, noise_dim=noise_dim
    ).double()
    with torch.no_grad():
        for head in net.heads.values():
            head.weight.normal_()
    w0, sound = _inputs(t=6, dtype=torch.float64)
    noise = torch.randn(2, 6, noise_dim, dtype=torch.float64) if noise_dim else None
    full = net.rollout(w0, sound, noise)
    state, w, frames = net.initial_state(w0), w0, []
    for t in range(6):
        w, state = net.step(state, w, sound[:, t], None if noise is None else noise[:, t])
        frames.append(w)
    torch.testing.assert_close(torch.stack(frames, 1), full, rtol=0, atol=1e-10)
    assert (full - w0.unsqueeze(1)).abs().max() > 0.1


def test_noise_makes_trajectories_differ() -> None:
    net = TrajectoryGenerator(N_LATENT, STYLE, hidden=8, num_layers=1, noise_dim=4)
    with torch.no_grad():
        for head in net.heads.values():
            head.weight.normal_()
    w0, sound = _inputs(t=3)
    assert not torch.allclose(net(w0, sound), net(w0, sound))


def test_every_parameter_gets_a_gradient() -> None:
    net = TrajectoryGenerator(N_LATENT, STYLE, hidden=8, num_layers=2)
    w0, sound = _inputs(t=3)
    net(w0, sound).square().sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_custom_groups_and_bad_groups() -> None:
    groups = {"a": (0, 2), "b": (2, 8)}
    net = TrajectoryGenerator(N_LATENT, STYLE, hidden=8, num_layers=1, groups=groups)
    assert set(net.rnns) == {"a", "b"}
    assert net(*_inputs(t=2)).shape == (2, 2, N_LATENT, STYLE)
    with pytest.raises(ValueError, match="split the 8 W\\+ layers"):
        TrajectoryGenerator(N_LATENT, STYLE, groups={"a": (0, 3), "b": (4, 8)})
    with pytest.raises(ValueError, match="split the 8 W\\+ layers"):
        TrajectoryGenerator(N_LATENT, STYLE, groups={"a": (0, 5), "b": (4, 8)})


def test_bad_inputs_are_clear_errors() -> None:
    net = TrajectoryGenerator(N_LATENT, STYLE, hidden=8, num_layers=1)
    w0, sound = _inputs()
    with pytest.raises(ValueError, match="sound_latents must be 'b t n_latent style_dim'"):
        net.rollout(w0, sound[:, :, :4])
    with pytest.raises(ValueError, match="w0 must be"):
        net.rollout(w0[0], sound)
    with pytest.raises(ValueError, match="at least one step"):
        net.rollout(w0[:1], sound)
    with pytest.raises(RuntimeError, match="bidirectional=False"):
        net.step(net.initial_state(w0), w0, sound[:, 0])
    noisy = TrajectoryGenerator(N_LATENT, STYLE, hidden=8, num_layers=1, noise_dim=2)
    with pytest.raises(ValueError, match="noise must have shape"):
        noisy.rollout(w0, sound, torch.zeros(2, 5, 3))


def test_recurrence_stays_in_float32_under_autocast() -> None:
    net = TrajectoryGenerator(N_LATENT, STYLE, hidden=8, num_layers=1)
    w0, sound = _inputs(t=3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(w0, sound)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, net(w0, sound))
