"""TrajectoryGenerator: shapes, the causal residual recurrence, streaming equals rollout,
walking back to the sound, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from sgvideo.models.latents import style_groups
from sgvideo.models.trajectory import MAX_PERSISTENCE, TrajectoryGenerator, _circle_axes

N_LATENT, STYLE = 8, 16


def _inputs(b: int = 2, t: int = 5, dtype: torch.dtype = torch.float32):
    w0 = torch.randn(b, N_LATENT, STYLE, dtype=dtype)
    sound = torch.randn(b, t, N_LATENT, STYLE, dtype=dtype)
    return w0, sound


@pytest.mark.parametrize("t", [1, 2, 6])
def test_an_untrained_net_follows_the_sound_latents_with_a_lag(t: int) -> None:
    net = TrajectoryGenerator(N_LATENT, STYLE, hidden=12, num_layers=2)
    with torch.no_grad():
        for head in net.heads.values():
            head.weight.zero_()
    w0, sound = _inputs(t=t)
    out = net.rollout(w0, sound)
    assert out.shape == (2, t, N_LATENT, STYLE)
    w = w0
    for i in range(t):  # a = 0.5 at initialisation: half way to the sound latent each frame
        w = sound[:, i] + 0.5 * (w - sound[:, i])
        torch.testing.assert_close(out[:, i], w)


def test_the_recurrence_is_the_pull_plus_each_groups_residual() -> None:
    net = TrajectoryGenerator(N_LATENT, STYLE, hidden=12, num_layers=2)
    fine = style_groups(N_LATENT)["fine"]
    with torch.no_grad():
        for head in net.heads.values():
            head.weight.zero_()
        net.heads["fine"].bias.fill_(0.5)
        net.persistence["fine"].fill_(torch.logit(torch.tensor(0.8 / MAX_PERSISTENCE)))
    w0, _ = _inputs()
    sound = torch.ones(2, 4, N_LATENT, STYLE)
    out = net.rollout(w0, sound)
    w = w0[:, fine]
    for i in range(4):  # a = 0.8, delta = 0.5 on the fine layers only
        w = 1.0 + 0.8 * (w - 1.0) + 0.5
        torch.testing.assert_close(out[:, i, fine], w)
    coarse = style_groups(N_LATENT)["coarse"]
    torch.testing.assert_close(out[:, -1, coarse], 1.0 + 0.5**4 * (w0[:, coarse] - 1.0))


def test_no_residuals_can_drift_a_long_video_away_from_its_sound() -> None:
    net = TrajectoryGenerator(N_LATENT, STYLE, hidden=12, num_layers=1, audio_dim=3, noise_dim=2)
    with torch.no_grad():
        for head in net.heads.values():
            head.weight.normal_(std=1.0)
            head.bias.normal_(std=1.0)
        for p in net.persistence.values():
            p.fill_(20.0)  # a at its bound, 0.95
    w0, _ = _inputs(t=1)
    sound = torch.randn(2, 600, N_LATENT, STYLE)
    out = net(w0, sound, torch.randn(2, 600, 3), torch.randn(2, 600, 2))
    bound = max(  # |delta| <= |bias| + sum |weights| (the GRU state lies in (-1, 1))
        (head.bias.abs() + head.weight.abs().sum(dim=1)).max().item() for head in net.heads.values()
    )
    gap = (out - sound).abs().amax(dim=(0, 2, 3))
    assert gap[100:].max() <= bound / (1 - MAX_PERSISTENCE) + 1e-3
    assert gap[-100:].max() <= 1.5 * gap[100:200].max()  # no growth over 600 frames


def test_the_net_is_causal_and_reads_the_previous_latent() -> None:
    net = TrajectoryGenerator(N_LATENT, STYLE, 8, num_layers=1, audio_dim=3)
    w0, sound = _inputs(t=4)
    audio = torch.randn(2, 4, 3)
    base = net(w0, sound, audio)
    later = sound.clone()
    later[:, -1] += 1.0
    torch.testing.assert_close(net(w0, later, audio)[:, :-1], base[:, :-1], rtol=0, atol=0)
    louder = audio.clone()
    louder[:, 2] += 1.0
    moved = net(w0, sound, louder)
    torch.testing.assert_close(moved[:, :2], base[:, :2], rtol=0, atol=0)
    assert not torch.allclose(moved[:, 2], base[:, 2])
    # the same sound from another start gives another first residual: the net sees w^{t-1}
    first = net(w0, sound, audio)[:, 0] - w0
    elsewhere = net(w0 + 1.0, sound, audio)[:, 0] - (w0 + 1.0)
    assert not torch.allclose(first, elsewhere)


def _pull_toward_sound(net: TrajectoryGenerator, rate: float) -> None:
    """Weights that make every residual -rate * (w^{t-1} - w_a^t): a net that steers back."""
    width = {name: (s.stop - s.start) * STYLE for name, s in net.groups.items()}
    with torch.no_grad():
        for name, rnn in net.rnns.items():
            for p in rnn.parameters():
                p.zero_()
            # the GRU's candidate state is tanh(W x): keep the first `width` inputs, small
            rnn.weight_ih_l0[2 * net.hidden : 2 * net.hidden + width[name], : width[name]] = (
                torch.eye(width[name]) * 0.01
            )
            rnn.bias_ih_l0[net.hidden : 2 * net.hidden] = -50.0  # update gate closed: h = n
            net.heads[name].weight.zero_()
            net.heads[name].weight[:, : width[name]] = -rate * 100.0 * torch.eye(width[name])
            net.heads[name].bias.zero_()


def test_a_net_that_sees_where_it_is_can_walk_back_to_its_sound() -> None:
    net = TrajectoryGenerator(N_LATENT, STYLE, hidden=N_LATENT * STYLE, num_layers=1).double()
    _pull_toward_sound(net, 0.5)
    w0 = torch.zeros(1, N_LATENT, STYLE, dtype=torch.float64)
    target = torch.full((1, 40, N_LATENT, STYLE), 0.3, dtype=torch.float64)
    out = net(w0, target)
    gap = (out - target).abs().amax(dim=(0, 2, 3))
    assert gap[0] < 0.3 and gap[-1] < 1e-6 and (gap[1:] <= gap[:-1] + 1e-12).all()


@pytest.mark.parametrize(
    ("audio_dim", "noise_dim", "prime_steps", "orbit"),
    [(0, 0, 0, False), (4, 3, 0, False), (4, 3, 5, False), (4, 0, 5, True)],
)
def test_stepping_equals_rollout(
    audio_dim: int, noise_dim: int, prime_steps: int, orbit: bool
) -> None:
    net = TrajectoryGenerator(
        N_LATENT,
        STYLE,
        hidden=10,
        num_layers=3,
        audio_dim=audio_dim,
        noise_dim=noise_dim,
        prime_steps=prime_steps,
        orbit=orbit,
    ).double()
    with torch.no_grad():
        for head in net.heads.values():
            head.weight.normal_()
    w0, sound = _inputs(t=6, dtype=torch.float64)
    audio = torch.randn(2, 6, audio_dim, dtype=torch.float64) if audio_dim else None
    noise = torch.randn(2, 6, noise_dim, dtype=torch.float64) if noise_dim else None
    full = net.rollout(w0, sound, audio, noise)
    first_audio = None if audio is None else audio[:, 0]
    state, frames = net.initial_state(w0, sound[:, 0], first_audio), []
    for t in range(6):
        w, state = net.step(
            state,
            sound[:, t],
            None if audio is None else audio[:, t],
            None if noise is None else noise[:, t],
        )
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


@pytest.mark.parametrize("orbit", [False, True])
def test_every_parameter_gets_a_gradient(orbit: bool) -> None:
    net = TrajectoryGenerator(N_LATENT, STYLE, hidden=8, num_layers=2, audio_dim=3, orbit=orbit)
    w0, sound = _inputs(t=3)
    net(w0, sound, torch.randn(2, 3, 3)).square().sum().backward()
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
    listening = TrajectoryGenerator(N_LATENT, STYLE, hidden=8, num_layers=1, audio_dim=2)
    with pytest.raises(ValueError, match="reads 2 audio features"):
        listening.rollout(w0, sound)
    with pytest.raises(ValueError, match="audio must have shape"):
        listening.rollout(w0, sound, torch.zeros(2, 5, 3))
    noisy = TrajectoryGenerator(N_LATENT, STYLE, hidden=8, num_layers=1, noise_dim=2)
    with pytest.raises(ValueError, match="noise must have shape"):
        noisy.rollout(w0, sound, noise=torch.zeros(2, 5, 3))
    with pytest.raises(ValueError, match="reads no audio"):
        noisy.rollout(w0, sound, torch.zeros(2, 5, 3))


def test_recurrence_stays_in_float32_under_autocast() -> None:
    net = TrajectoryGenerator(N_LATENT, STYLE, hidden=8, num_layers=1)
    w0, sound = _inputs(t=3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(w0, sound)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, net(w0, sound))


def test_priming_settles_the_start_so_a_steady_sound_gives_a_still_video() -> None:
    """Unprimed, a steady sound moves the first frames (GRU states from zero, the residual
    offset building up); primed, the video starts settled, offset from w^0 by the same amount."""
    torch.manual_seed(0)
    frames, steady = [], {}
    for prime_steps in (0, 64):
        torch.manual_seed(1)
        net = TrajectoryGenerator(
            N_LATENT, STYLE, hidden=12, num_layers=2, audio_dim=3, prime_steps=prime_steps
        ).double()
        with torch.no_grad():
            for head in net.heads.values():
                head.weight.mul_(20.0)
            for persistence in net.persistence.values():
                persistence.fill_(3.0)  # a = 0.95 sigmoid(3) = 0.90: a slow pull
        sound = torch.randn(1, N_LATENT, STYLE, dtype=torch.float64).expand(1, 150, -1, -1)
        audio = torch.rand(1, 3, dtype=torch.float64).expand(1, 150, -1)
        with torch.no_grad():
            w = net.rollout(sound[:, 0], sound, audio)
        frames.append((w[:, 1:] - w[:, :-1]).norm(dim=(-2, -1))[0])
        steady[prime_steps] = w[0, -1]
    unprimed, primed = frames
    assert unprimed[:5].min() > 1e-2
    assert primed.max() < 0.02 * unprimed[:5].max()
    # both settle on the same latent
    torch.testing.assert_close(steady[0], steady[64], rtol=0, atol=1e-3)


def _orbit_only(audio_dim: int = 3) -> TrajectoryGenerator:
    """An orbiting net whose recurrence stands still (no residuals, no pull): only its loop
    moves."""
    net = TrajectoryGenerator(
        N_LATENT, STYLE, hidden=8, num_layers=1, audio_dim=audio_dim, orbit=True
    ).double()
    with torch.no_grad():
        for head in net.heads.values():
            head.weight.zero_()
        for persistence in net.persistence.values():
            persistence.fill_(50.0)  # a = 0.95 and w^{t-1} = w_a: the recurrence stays put
        for pace in net.orbit_pace.values():
            pace.weight.zero_()  # as initialised: each group's pace is its bias
    return net


def _reference_orbit(net: TrajectoryGenerator, audio: torch.Tensor) -> torch.Tensor:
    """The orbit's phases "t groups" for one video's features "t audio_dim", step by step, for
    a net whose pace heads read nothing from the GRUs (their bias is the pace)."""
    loudness = audio @ net.orbit_loudness.weight.detach().double().T
    pace = torch.cat([net.orbit_pace[name].bias.detach() for name in ("coarse", "mid", "fine")])
    level, phase, phases = loudness[0], torch.zeros_like(loudness[0]), []
    for t in range(len(audio)):
        level = level + (loudness[t] - level) / 15
        phase = phase + torch.pi / 2 * torch.sigmoid(pace + loudness[t] - level)
        phases.append(phase)
    return torch.stack(phases)


def test_the_orbit_is_a_loop_whose_speed_the_relative_loudness_sets() -> None:
    """Each group walks the circle o = cos phi u + sin phi v; phi advances faster when the
    sound is louder than its recent level: steps are chords 2 |u| sin(speed / 2)."""
    torch.manual_seed(0)
    net = _orbit_only()
    sound = torch.randn(1, N_LATENT, STYLE, dtype=torch.float64).expand(1, 40, -1, -1)
    level = torch.full((40,), 0.3, dtype=torch.float64)
    level[20:24] = 0.4  # a swell of 6 dB (features are dB / 80)
    audio = level[None, :, None].expand(1, 40, 3)
    with torch.no_grad():
        w = net.rollout(sound[:, 0], sound, audio)[0]
    phase = _reference_orbit(net, audio[0])
    for i, (name, layers) in enumerate(sorted(net.groups.items(), key=lambda g: g[1].start)):
        u, v = _circle_axes(net.orbit_axes[name].detach())
        assert abs(float((u * v).sum())) < 1e-9 and abs(float(u.norm() - v.norm())) < 1e-9
        angle = phase[:, i, None, None]
        expected = sound[0, :, layers] + torch.cos(angle) * u + torch.sin(angle) * v
        torch.testing.assert_close(w[:, layers], expected)
    steps = (w[1:] - w[:-1]).norm(dim=(-2, -1))
    steady, swell = steps[10:18], steps[19:22]
    torch.testing.assert_close(steady, steady[:1].expand(8))  # a steady sound, a steady pace
    assert swell.min() > 1.5 * steady.max()  # louder than its recent level: faster
    # twice the amplitude (+6.02 dB) starts as twice exp(loudness)
    gain = net.orbit_loudness.weight.detach().sum(1) * 20 * math.log10(2) / 80
    torch.testing.assert_close(gain, torch.full_like(gain, math.log(2)))


def test_the_orbit_does_not_depend_on_the_recordings_gain() -> None:
    torch.manual_seed(0)
    net = _orbit_only()
    sound = torch.randn(1, N_LATENT, STYLE, dtype=torch.float64).expand(1, 30, -1, -1)
    audio = 0.3 + 0.05 * torch.rand(1, 30, 3, dtype=torch.float64)
    with torch.no_grad():
        quiet = net.rollout(sound[:, 0], sound, audio)
        loud = net.rollout(sound[:, 0], sound, audio + 0.25)  # the same sound 20 dB louder
    torch.testing.assert_close(quiet, loud)


def test_a_loud_orbit_stays_on_its_circle_for_any_length() -> None:
    net = _orbit_only()
    sound = torch.randn(1, N_LATENT, STYLE, dtype=torch.float64).expand(1, 500, -1, -1)
    audio = torch.ones(1, 500, 3, dtype=torch.float64)  # as loud as it gets
    with torch.no_grad():
        w = net.rollout(sound[:, 0], sound, audio)
    radii = torch.stack([_circle_axes(a.detach())[0].norm() for a in net.orbit_axes.values()])
    distance = (w - sound).norm(dim=(-2, -1))
    torch.testing.assert_close(distance, radii.norm().expand_as(distance))


def test_an_orbit_needs_audio_features() -> None:
    with pytest.raises(ValueError, match="orbit needs audio features"):
        TrajectoryGenerator(N_LATENT, STYLE, orbit=True)
    with pytest.raises(ValueError, match="orbit_memory must be at least 1 step, got 0.5"):
        TrajectoryGenerator(N_LATENT, STYLE, audio_dim=3, orbit=True, orbit_memory=0.5)
