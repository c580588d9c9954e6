"""Hierarchical latent trajectory generator: sound latents -> one W+ latent per frame.

Each style group (coarse / mid / fine W+ layers) has its own GRU, run causally one frame at a
time as in the authors' script. At frame t a group's GRU reads where the video is relative to
the sound (its slice of w^{t-1} - w_a^t), the sound latent w_a^t itself, the frame's own audio
features (e.g. the frame's log-mel averaged over time: loudness and timbre at the frame rate)
and optional noise; a linear head predicts a residual, added to a learned pull toward the sound:

    w^t = w^{t-1} + (1 - a) * (w_a^t - w^{t-1}) + delta_t,   w^{-1} = w^0 (the start latent),

with a = 0.95 * sigmoid(p) in (0, 0.95) learned per W+ layer. The pull is what keeps a long
video on its sound: whatever the GRU adds, w^t stays within max|delta| / (1 - a) of the sound
latents, so nothing accumulates over a sound far longer than the training clips. The residual
is the motion: because the GRU sees the frame's audio it can move the picture when the sound
does. Training (`rollout`) and streaming (`step`, the state carried between calls) are the same
computation. Heads start near zero and a at 0.5, so an untrained trajectory follows the sound
latents with a lag of about a frame. With `prime_steps`, the trajectory first rehearses frame
0's inputs that many times, unseen, from w_a^0: GRU states that start at zero, and a latent not
yet carrying the offset from the sound latent that the residuals hold in a steady sound, take a
few frames to settle, and without the rehearsal that settling shows as motion in the first
frames, whatever the sound does. The video then starts from w^0 plus the rehearsed offset, with
the rehearsed GRU states.

With `orbit`, each group also walks a small closed loop in W+ whose speed the sound sets:

    o^t = cos phi^t u + sin phi^t v,         phi^t = phi^{t-1} + (pi / 2) sigmoid(b^t + l^t - m^t),
    l^t = k . audio_t (a log loudness),      m^t = m^{t-1} + (l^t - m^{t-1}) / M,   m^{-1} = l^0,

with learned axes u, v "n s" per group (v kept orthogonal to u and as long: a circle around the
recurrence's latent), k per group, b^t the pace a linear head reads from the group's GRU (so each
scene sets its own pace: a storm sky still between its booms, rain always busy), phi^{-1} = 0, and
the frame's latent w^t + o^t (the recurrence carries w^t, without the loop). The loop's step from
one frame to the next, |o^t - o^{t-1}| = 2 |u| sin(speed / 2), grows with the speed, so the
picture's texture moves faster when the sound is louder than its recent level m (about the last M =
`orbit_memory` steps), and it stays exactly |u| from the recurrence: a circle through w^t rather
than around it would reach twice as far from the sound's scene for the same motion. Relative
loudness keeps a loud steady sound (rain) from racing and lets a quiet breeze move when it swells,
whatever the recording's gain. k starts at the gain that makes exp(l) proportional to the frame's
amplitude (the features are dB / 80), so even the small swells of a steady wind change the speed;
the GRU residuals then only need to add what the loop cannot (a flash, a flare).

With `noise_drift`, the net also holds a `PacedScroll` (`sgvideo.models.noise_drift`): the
generator's noise images scroll at a speed the frame's audio sets, so the fine texture moves with
the loudness while the latents, and with them the scene, stay where the recurrence puts them.
With `scene_pan`, a second `PacedScroll` pans the generator's coarse features sideways the same
way (`Generator.synthesis`'s `pan_offset`): the whole scene moves, as clouds in the wind do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from einops import rearrange
from torch import Tensor, nn

from sgvideo.models.latents import style_groups
from sgvideo.models.noise_drift import MAX_PAN_SPEED, PacedScroll

HEAD_INIT_SCALE = 1e-2
MAX_PERSISTENCE = 0.95  # a < 1: some pull toward the sound latent always remains
MAX_ORBIT_SPEED = math.pi / 2  # radians a frame: beyond this a faster loop moves no further
# Initial loudness gain of the orbit speed: features are dB / 80, amplitude = 10^(dB / 20), so
# exp(k x) with k = 4 ln 10 is proportional to the amplitude (for the mean over mel bands).
ORBIT_AMPLITUDE_GAIN = 4 * math.log(10.0)
ORBIT_BIAS_INIT = -2.0  # about 0.19 rad a frame when the sound is at its recent level


@dataclass
class TrajectoryState:
    """What streaming carries between frames: the last latent (without the orbit), each
    group's GRU state and, with `orbit`, each group's phase and recent loudness level."""

    w: Tensor  # "b n_latent style_dim"
    hidden: dict[str, Tensor]  # group -> "num_layers b hidden"
    phase: Tensor | None = None  # "b groups", groups in layer order
    level: Tensor | None = None  # "b groups"; None before the first frame


def _as_slices(groups: Mapping[str, slice | tuple[int, int] | list[int]]) -> dict[str, slice]:
    return {
        name: s if isinstance(s, slice) else slice(int(s[0]), int(s[1]))
        for name, s in groups.items()
    }


def _check_partition(groups: dict[str, slice], n_latent: int) -> None:
    spans = sorted((s.start, s.stop) for s in groups.values())
    covered = [i for start, stop in spans for i in range(start, stop)]
    if covered != list(range(n_latent)) or any(start >= stop for start, stop in spans):
        raise ValueError(
            f"style groups must split the {n_latent} W+ layers into non-empty contiguous parts, "
            f"got {groups}"
        )


class TrajectoryGenerator(nn.Module):
    """Per-frame W+ latents from per-frame sound latents, one causal GRU per style group.

    `groups` maps a group name to its W+ layers (a slice or a (start, stop) pair); by default
    the coarse / mid / fine split of `style_groups(n_latent)`. `audio_dim` is the size of the
    per-frame audio features (0: none), `noise_dim` the size of per-frame noise (0: none),
    `prime_steps` the rehearsals of frame 0's inputs that settle the GRU states, `orbit` adds
    the sound-paced loop of each group (module docstring; needs audio features), its axes
    starting about `orbit_radius` long in each W+ layer, its loudness level averaging about
    `orbit_memory` steps. `noise_drift` adds a `PacedScroll` (`self.noise_drift`, else None):
    the offsets of the generator's noise images at each step, from the same audio features;
    `scene_pan` a second one (`self.scene_pan`, else None), the offsets of its panned scene.
    """

    def __init__(
        self,
        n_latent: int,
        style_dim: int = 512,
        hidden: int = 512,
        num_layers: int = 5,
        audio_dim: int = 0,
        noise_dim: int = 0,
        groups: Mapping[str, slice | tuple[int, int] | list[int]] | None = None,
        prime_steps: int = 0,
        orbit: bool = False,
        orbit_radius: float = 0.15,
        orbit_memory: float = 15.0,
        noise_drift: bool = False,
        scene_pan: bool = False,
    ) -> None:
        super().__init__()
        self.n_latent = n_latent
        self.style_dim = style_dim
        self.hidden = hidden
        self.num_layers = num_layers
        self.audio_dim = audio_dim
        self.noise_dim = noise_dim
        if prime_steps < 0:
            raise ValueError(f"prime_steps must be >= 0, got {prime_steps}")
        self.prime_steps = prime_steps
        if orbit and audio_dim == 0:
            raise ValueError("orbit needs audio features (audio_dim > 0): the sound sets its speed")
        self.orbit = orbit
        self.orbit_radius = orbit_radius
        if orbit_memory < 1:
            raise ValueError(f"orbit_memory must be at least 1 step, got {orbit_memory}")
        self.orbit_memory = orbit_memory
        for name, wanted in (("noise_drift", noise_drift), ("scene_pan", scene_pan)):
            if wanted and audio_dim == 0:
                raise ValueError(f"{name} needs audio features (audio_dim > 0): the sound sets it")
        self.noise_drift = PacedScroll(audio_dim) if noise_drift else None
        self.scene_pan = PacedScroll(audio_dim, MAX_PAN_SPEED) if scene_pan else None
        self.groups = _as_slices(groups) if groups is not None else style_groups(n_latent)
        _check_partition(self.groups, n_latent)
        self.rnns = nn.ModuleDict()
        self.heads = nn.ModuleDict()
        self.persistence = nn.ParameterDict()  # p per W+ layer of the group: a = 0.95 sigmoid(p)
        for name, layers in self.groups.items():
            width = (layers.stop - layers.start) * style_dim
            self.rnns[name] = nn.GRU(2 * width + audio_dim + noise_dim, hidden, num_layers)
            head = nn.Linear(hidden, width)
            with torch.no_grad():
                head.weight.mul_(HEAD_INIT_SCALE)
                head.bias.zero_()
            self.heads[name] = head
            init = torch.logit(torch.tensor(0.5 / MAX_PERSISTENCE))
            self.persistence[name] = nn.Parameter(init.repeat(layers.stop - layers.start, 1))
        if orbit:
            self.orbit_axes = nn.ParameterDict(
                {
                    name: nn.Parameter(
                        orbit_radius
                        / math.sqrt(style_dim)
                        * torch.randn(2, s.stop - s.start, style_dim)
                    )
                    for name, s in self.groups.items()
                }
            )
            self.orbit_loudness = nn.Linear(audio_dim, len(self.groups), bias=False)
            self.orbit_pace = nn.ModuleDict({name: nn.Linear(hidden, 1) for name in self.groups})
            with torch.no_grad():
                self.orbit_loudness.weight.fill_(ORBIT_AMPLITUDE_GAIN / audio_dim)
                for pace in self.orbit_pace.values():
                    pace.weight.zero_()
                    pace.bias.fill_(ORBIT_BIAS_INIT)

    @property
    def config(self) -> dict:
        """The constructor arguments (saved with a checkpoint)."""
        return dict(
            n_latent=self.n_latent,
            style_dim=self.style_dim,
            hidden=self.hidden,
            num_layers=self.num_layers,
            audio_dim=self.audio_dim,
            noise_dim=self.noise_dim,
            groups={name: [s.start, s.stop] for name, s in self.groups.items()},
            prime_steps=self.prime_steps,
            orbit=self.orbit,
            orbit_radius=self.orbit_radius,
            orbit_memory=self.orbit_memory,
            noise_drift=self.noise_drift is not None,
            scene_pan=self.scene_pan is not None,
        )

    def scroll_offsets(
        self, audio: Tensor, starts: tuple[Tensor | None, Tensor | None] = (None, None)
    ) -> tuple[Tensor | None, Tensor | None]:
        """The noise drift's and the scene pan's offsets "b t" from the audio features
        "b t audio_dim" (None for a scroll the net lacks): each from its offset of the step
        before in `starts` ("b"; `PacedScroll.offsets`), or from 0 at the first step (None)."""
        noise, pan = (
            None if scroll is None else scroll.offsets(audio, start)
            for scroll, start in zip((self.noise_drift, self.scene_pan), starts, strict=True)
        )
        return noise, pan

    def _check_latents(self, w: Tensor, name: str, pattern: str) -> None:
        expected = (self.n_latent, self.style_dim)
        if w.ndim != len(pattern.split()) or tuple(w.shape[-2:]) != expected:
            raise ValueError(
                f"{name} must be {pattern!r} with n_latent={self.n_latent}, "
                f"style_dim={self.style_dim}; got shape {tuple(w.shape)}"
            )

    def _extra(self, value: Tensor | None, dim: int, shape: tuple[int, ...], name: str, like):
        """Per-frame audio features or noise "*shape dim": checked, drawn (noise) or None."""
        if dim == 0:
            if value is not None:
                raise ValueError(f"this trajectory net reads no {name} (its {name}_dim is 0)")
            return None
        if value is None:
            if name == "audio":
                raise ValueError(f"this trajectory net reads {dim} audio features per frame")
            return torch.randn(*shape, dim, device=like.device, dtype=like.dtype)
        if tuple(value.shape) != (*shape, dim):
            raise ValueError(f"{name} must have shape {(*shape, dim)}, got {tuple(value.shape)}")
        return value

    def initial_state(
        self,
        w0: Tensor,
        first_sound_latent: Tensor | None = None,
        first_audio: Tensor | None = None,
    ) -> TrajectoryState:
        """The streaming state before the first frame: the start latent w^0 "b n s" and zero GRU
        states, or (with `prime_steps`) both settled by rehearsing frame 0's sound latent
        "b n s" and audio features "b audio_dim" (module docstring; noise reads zero)."""
        self._check_latents(w0, "w0", "b n_latent style_dim")
        zeros = w0.new_zeros(self.num_layers, w0.shape[0], self.hidden)
        phase = w0.new_zeros(w0.shape[0], len(self.groups)) if self.orbit else None
        state = TrajectoryState(w=w0, hidden={name: zeros for name in self.groups}, phase=phase)
        if not self.prime_steps:
            return state
        if first_sound_latent is None:
            raise ValueError("this trajectory net primes its GRUs: pass frame 0's sound latent")
        silence = w0.new_zeros(w0.shape[0], self.noise_dim) if self.noise_dim else None
        rehearsal = TrajectoryState(w=first_sound_latent, hidden=state.hidden, phase=phase)
        for _ in range(self.prime_steps):
            rehearsal = self._advance(rehearsal, first_sound_latent, first_audio, silence)
        offset = rehearsal.w - first_sound_latent
        return TrajectoryState(
            w=w0 + offset, hidden=rehearsal.hidden, phase=phase, level=rehearsal.level
        )

    def step(
        self,
        state: TrajectoryState,
        w_a: Tensor,
        audio: Tensor | None = None,
        noise: Tensor | None = None,
    ) -> tuple[Tensor, TrajectoryState]:
        """One frame: w_a "b n s", audio "b audio_dim", noise "b noise_dim" -> w^t "b n s"."""
        state = self._advance(state, w_a, audio, noise)
        if not self.orbit:
            return state.w, state
        return state.w + self.orbit_offset(state.phase), state

    def _advance(
        self,
        state: TrajectoryState,
        w_a: Tensor,
        audio: Tensor | None = None,
        noise: Tensor | None = None,
    ) -> TrajectoryState:
        """One frame of the recurrence (and, with `orbit`, of each loop's phase): the next
        state, whose latent is the frame's without its point on the loop."""
        self._check_latents(w_a, "w_a", "b n_latent style_dim")
        batch = (w_a.shape[0],)
        extras = [
            self._extra(audio, self.audio_dim, batch, "audio", w_a),
            self._extra(noise, self.noise_dim, batch, "noise", w_a),
        ]
        w_prev, hidden, deltas, paces = state.w, {}, [], []
        ordered = self._ordered_groups()
        # The recurrence runs in the weights' precision even under autocast: the residuals
        # accumulate over frames, and not every backend has reduced-precision GRUs.
        with torch.autocast(w_a.device.type, enabled=False):
            for name, layers in ordered:
                head = self.heads[name]
                parts = [
                    rearrange(w_prev[:, layers] - w_a[:, layers], "b n s -> b (n s)"),
                    rearrange(w_a[:, layers], "b n s -> b (n s)"),
                    *(e for e in extras if e is not None),
                ]
                x = torch.cat(parts, dim=-1).to(head.weight.dtype)
                out, hidden[name] = self.rnns[name](x.unsqueeze(0), state.hidden.get(name))
                deltas.append(rearrange(head(out[0]), "b (n s) -> b n s", s=self.style_dim))
                if self.orbit:
                    paces.append(self.orbit_pace[name](out[0]))
        persistence = torch.cat([self.persistence[name] for name, _ in ordered])
        kept = MAX_PERSISTENCE * torch.sigmoid(persistence.to(w_prev.dtype))
        w = w_a + kept * (w_prev - w_a) + torch.cat(deltas, dim=1).to(w_prev.dtype)
        if not self.orbit:
            return TrajectoryState(w=w, hidden=hidden)
        with torch.autocast(w_a.device.type, enabled=False):
            loudness = self.orbit_loudness(extras[0].to(self.orbit_loudness.weight.dtype))
        loudness = loudness.to(w.dtype)
        level = loudness if state.level is None else state.level
        level = level + (loudness - level) / self.orbit_memory
        pace = torch.cat(paces, dim=1).to(w.dtype)
        speed = MAX_ORBIT_SPEED * torch.sigmoid(pace + loudness - level)
        return TrajectoryState(w=w, hidden=hidden, phase=state.phase + speed, level=level)

    def _ordered_groups(self) -> list[tuple[str, slice]]:
        return sorted(self.groups.items(), key=_by_start)

    def orbit_offset(self, phase: Tensor) -> Tensor:
        """Each group's point on its loop: phase "... groups" -> offset "... n_latent style_dim"
        (any leading dims, so a whole rollout's offsets come from one call)."""
        parts = []
        for i, (name, _) in enumerate(self._ordered_groups()):
            u, v = _circle_axes(self.orbit_axes[name].to(phase.dtype))
            angle = phase[..., i, None, None]
            parts.append(torch.cos(angle) * u + torch.sin(angle) * v)
        return torch.cat(parts, dim=-2)

    def rollout(
        self,
        w0: Tensor,
        sound_latents: Tensor,
        audio: Tensor | None = None,
        noise: Tensor | None = None,
    ) -> Tensor:
        """w0 "b n s", sound_latents "b t n s" (audio "b t audio_dim", noise "b t noise_dim")
        -> latents "b t n s": `step` frame after frame from `initial_state` (w0, frame 0), each
        frame's point on the loops added at the end in one batched computation."""
        self._check_latents(w0, "w0", "b n_latent style_dim")
        self._check_latents(sound_latents, "sound_latents", "b t n_latent style_dim")
        b, t = sound_latents.shape[:2]
        if w0.shape[0] != b or t < 1:
            raise ValueError(
                f"sound_latents {tuple(sound_latents.shape)} must hold at least one step for each "
                f"of the {w0.shape[0]} start latents"
            )
        audio = self._extra(audio, self.audio_dim, (b, t), "audio", sound_latents)
        noise = self._extra(noise, self.noise_dim, (b, t), "noise", sound_latents)
        first_audio = None if audio is None else audio[:, 0]
        state = self.initial_state(w0, sound_latents[:, 0], first_audio)
        states = []
        for i in range(t):
            state = self._advance(
                state,
                sound_latents[:, i],
                None if audio is None else audio[:, i],
                None if noise is None else noise[:, i],
            )
            states.append(state)
        w = torch.stack([s.w for s in states], dim=1)
        if not self.orbit:
            return w
        return w + self.orbit_offset(torch.stack([s.phase for s in states], dim=1))

    forward = rollout


def _circle_axes(axes: Tensor) -> tuple[Tensor, Tensor]:
    """Learned axes "2 n s" -> u and v: v made orthogonal to u and as long, so that the loop is
    a circle of radius |u| and equal phase steps are equal steps in W+."""
    u, v = axes.unbind(0)
    v = v - (v * u).sum() / u.square().sum().clamp_min(1e-12) * u
    return u, v * (u.norm() / v.norm().clamp_min(1e-12))


def _by_start(item: tuple[str, slice]) -> int:
    """Sort key of (group name, W+ layers): groups in layer order."""
    return item[1].start


def frame_audio_features(mel: Tensor) -> Tensor:
    """The per-frame audio features the GRUs read: each frame's own log-mel averaged over time,
    "... n_mels time" -> "... n_mels" (loudness and timbre at the frame rate)."""
    return mel.mean(dim=-1)
