"""Hierarchical latent trajectory generator: sound latents -> one W+ latent per frame.

Each style group (coarse / mid / fine W+ layers) has its own GRU. At step t a group's GRU reads
its slice of the sound latent w_a^t and of the start latent w^0 (plus optional noise) and a
linear head predicts a residual, accumulated from the start:

    w^t = w^{t-1} + delta_t,   w^{-1} = w^0,   so   w^t = w^0 + delta_0 + ... + delta_t.

Frame 0 is therefore w^0 + delta_0: every frame, the first included, answers its own sound
window. The GRU reads w^0 rather than w^{t-1}: a bidirectional GRU (the training default, as in
the authors' script) runs over the whole sound sequence at once and cannot feed its own outputs
back, and the start latent carries the same "where the clip began" information. The
unidirectional variant streams: `step` carries the GRU hidden state, and `rollout` equals
stepping frame by frame. Heads start near zero so an untrained trajectory stays at w^0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from einops import rearrange, repeat
from torch import Tensor, nn

from sgvideo.models.latents import style_groups

HEAD_INIT_SCALE = 1e-2


@dataclass
class TrajectoryState:
    """What streaming carries between frames: the start latent and each group's GRU state."""

    w0: Tensor  # "b n_latent style_dim"
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
    """Per-frame W+ latents from per-frame sound latents, one GRU per style group.

    `groups` maps a group name to its W+ layers (a slice or a (start, stop) pair); by default
    the coarse / mid / fine split of `style_groups(n_latent)`.
    """

    def __init__(
        self,
        n_latent: int,
        style_dim: int = 512,
        hidden: int = 512,
        num_layers: int = 5,
        bidirectional: bool = True,
        noise_dim: int = 0,
        groups: Mapping[str, slice | tuple[int, int] | list[int]] | None = None,
    ) -> None:
        super().__init__()
        self.n_latent = n_latent
        self.style_dim = style_dim
        self.hidden = hidden
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.noise_dim = noise_dim
        self.groups = _as_slices(groups) if groups is not None else style_groups(n_latent)
        _check_partition(self.groups, n_latent)
        directions = 2 if bidirectional else 1
        self.rnns = nn.ModuleDict()
        self.heads = nn.ModuleDict()
        for name, layers in self.groups.items():
            width = (layers.stop - layers.start) * style_dim
            self.rnns[name] = nn.GRU(
                2 * width + noise_dim,
                hidden,
                num_layers,
                batch_first=True,
                bidirectional=bidirectional,
            )
            head = nn.Linear(directions * hidden, width)
            with torch.no_grad():
                head.weight.mul_(HEAD_INIT_SCALE)
                head.bias.zero_()
            self.heads[name] = head

    def _check_latents(self, w: Tensor, name: str, pattern: str) -> None:
        expected = (self.n_latent, self.style_dim)
        if w.ndim != len(pattern.split()) or tuple(w.shape[-2:]) != expected:
            raise ValueError(
                f"{name} must be {pattern!r} with n_latent={self.n_latent}, "
                f"style_dim={self.style_dim}; got shape {tuple(w.shape)}"
            )

    def _noise(self, noise: Tensor | None, shape: tuple[int, ...], like: Tensor) -> Tensor | None:
        if self.noise_dim == 0:
            return None
        if noise is None:
            return torch.randn(*shape, self.noise_dim, device=like.device, dtype=like.dtype)
        if tuple(noise.shape) != (*shape, self.noise_dim):
            raise ValueError(f"noise must have shape {(*shape, self.noise_dim)}, got {noise.shape}")
        return noise

    def _deltas(
        self, w0: Tensor, sound_latents: Tensor, noise: Tensor | None, hidden: dict[str, Tensor]
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Residuals "b t n_latent style_dim" for a sound sequence, and the final GRU states."""
        steps = sound_latents.shape[1]
        deltas, states = [], {}
        # The recurrence runs in the weights' precision even under autocast: the residuals
        # accumulate over frames, and not every backend has reduced-precision GRUs.
        with torch.autocast(sound_latents.device.type, enabled=False):
            for name, layers in sorted(self.groups.items(), key=lambda item: item[1].start):
                parts = [
                    rearrange(sound_latents[:, :, layers], "b t n s -> b t (n s)"),
                    repeat(w0[:, layers], "b n s -> b t (n s)", t=steps),
                ]
                if noise is not None:
                    parts.append(noise)
                x = torch.cat(parts, dim=-1).to(self.heads[name].weight.dtype)
                out, states[name] = self.rnns[name](x, hidden.get(name))
                delta = self.heads[name](out)
                deltas.append(rearrange(delta, "b t (n s) -> b t n s", s=self.style_dim))
        return torch.cat(deltas, dim=2), states

    def rollout(self, w0: Tensor, sound_latents: Tensor, noise: Tensor | None = None) -> Tensor:
        """w0 "b n style", sound_latents "b t n style" -> latents "b t n style".

        Frame t is w0 + delta_0 + ... + delta_t. `noise` "b t noise_dim" is drawn when the
        generator has noise and none is given.
        """
        self._check_latents(w0, "w0", "b n_latent style_dim")
        self._check_latents(sound_latents, "sound_latents", "b t n_latent style_dim")
        if sound_latents.shape[0] != w0.shape[0] or sound_latents.shape[1] < 1:
            raise ValueError(
                f"sound_latents {tuple(sound_latents.shape)} must hold at least one step for each "
                f"of the {w0.shape[0]} start latents"
            )
        noise = self._noise(noise, tuple(sound_latents.shape[:2]), sound_latents)
        deltas, _ = self._deltas(w0, sound_latents, noise, {})
        return w0.unsqueeze(1) + deltas.to(w0.dtype).cumsum(dim=1)

    forward = rollout

    def initial_state(self, w0: Tensor) -> TrajectoryState:
        """The streaming state before the first frame; step it with `w_prev = w0`."""
        self._check_latents(w0, "w0", "b n_latent style_dim")
        zeros = w0.new_zeros(self.num_layers, w0.shape[0], self.hidden)
        return TrajectoryState(w0=w0, hidden={name: zeros for name in self.groups})

    def step(
        self, state: TrajectoryState, w_prev: Tensor, w_a: Tensor, noise: Tensor | None = None
    ) -> tuple[Tensor, TrajectoryState]:
        """One streamed frame: w = w_prev + delta(w_a, state). Unidirectional generators only.

        `w_prev` is normally the previous output (w0 for the first frame); a caller may pass a
        smoothed latent instead. `noise` is "b noise_dim".
        """
        if self.bidirectional:
            raise RuntimeError(
                "step() streams frame by frame and needs a unidirectional TrajectoryGenerator "
                "(bidirectional=False); use rollout() for a bidirectional one"
            )
        self._check_latents(w_prev, "w_prev", "b n_latent style_dim")
        self._check_latents(w_a, "w_a", "b n_latent style_dim")
        noise = self._noise(noise, (w_a.shape[0],), w_a)
        deltas, hidden = self._deltas(
            state.w0,
            w_a.unsqueeze(1),
            None if noise is None else noise.unsqueeze(1),
            state.hidden,
        )
        return w_prev + deltas[:, 0].to(w_prev.dtype), TrajectoryState(w0=state.w0, hidden=hidden)
