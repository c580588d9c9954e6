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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from einops import rearrange
from torch import Tensor, nn

from sgvideo.models.latents import style_groups

HEAD_INIT_SCALE = 1e-2
MAX_PERSISTENCE = 0.95  # a < 1: some pull toward the sound latent always remains


@dataclass
class TrajectoryState:
    """What streaming carries between frames: the last latent and each group's GRU state."""

    w: Tensor  # "b n_latent style_dim"
    hidden: dict[str, Tensor]  # group -> "num_layers b hidden"


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
    `prime_steps` the rehearsals of frame 0's inputs that settle the GRU states (module
    docstring).
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
        )

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
        state = TrajectoryState(w=w0, hidden={name: zeros for name in self.groups})
        if not self.prime_steps:
            return state
        if first_sound_latent is None:
            raise ValueError("this trajectory net primes its GRUs: pass frame 0's sound latent")
        silence = w0.new_zeros(w0.shape[0], self.noise_dim) if self.noise_dim else None
        state = TrajectoryState(w=first_sound_latent, hidden=state.hidden)
        for _ in range(self.prime_steps):
            _, state = self.step(state, first_sound_latent, first_audio, silence)
        return TrajectoryState(w=w0 + (state.w - first_sound_latent), hidden=state.hidden)

    def step(
        self,
        state: TrajectoryState,
        w_a: Tensor,
        audio: Tensor | None = None,
        noise: Tensor | None = None,
    ) -> tuple[Tensor, TrajectoryState]:
        """One frame: w_a "b n s", audio "b audio_dim", noise "b noise_dim" -> w^t "b n s"."""
        self._check_latents(w_a, "w_a", "b n_latent style_dim")
        batch = (w_a.shape[0],)
        extras = [
            self._extra(audio, self.audio_dim, batch, "audio", w_a),
            self._extra(noise, self.noise_dim, batch, "noise", w_a),
        ]
        w_prev, hidden, deltas = state.w, {}, []
        ordered = sorted(self.groups.items(), key=_by_start)
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
        persistence = torch.cat([self.persistence[name] for name, _ in ordered])
        kept = MAX_PERSISTENCE * torch.sigmoid(persistence.to(w_prev.dtype))
        w = w_a + kept * (w_prev - w_a) + torch.cat(deltas, dim=1).to(w_prev.dtype)
        return w, TrajectoryState(w=w, hidden=hidden)

    def rollout(
        self,
        w0: Tensor,
        sound_latents: Tensor,
        audio: Tensor | None = None,
        noise: Tensor | None = None,
    ) -> Tensor:
        """w0 "b n s", sound_latents "b t n s" (audio "b t audio_dim", noise "b t noise_dim")
        -> latents "b t n s": `step` frame after frame from `initial_state` (w0, frame 0)."""
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
        state, out = self.initial_state(w0, sound_latents[:, 0], first_audio), []
        for i in range(t):
            w, state = self.step(
                state,
                sound_latents[:, i],
                None if audio is None else audio[:, i],
                None if noise is None else noise[:, i],
            )
            out.append(w)
        return torch.stack(out, dim=1)

    forward = rollout


def _by_start(item: tuple[str, slice]) -> int:
    """Sort key of (group name, W+ layers): groups in layer order."""
    return item[1].start


def frame_audio_features(mel: Tensor) -> Tensor:
    """The per-frame audio features the GRUs read: each frame's own log-mel averaged over time,
    "... n_mels time" -> "... n_mels" (loudness and timbre at the frame rate)."""
    return mel.mean(dim=-1)
