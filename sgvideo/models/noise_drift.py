"""Sound-paced scrolls of the generator: its noise images drift, its scene pans, as the sound is
loud.

The synthesis network adds a fixed per-pixel noise image at every layer; it draws the stochastic
detail (ripples, raindrops, blades of grass, embers). The noise drift scrolls those images down
the frame, each frame's offset the running sum of a speed that the frame's audio sets:

    y^t = y^{t-1} + s_max sigmoid(k . audio_t + b),   y^0 = 0   (frame widths),

with k and b learned (stage 2's motion term fits them to the real clips' motion), k starting at
the gain that makes the speed grow as the cube of the frame's amplitude below s_max (the features
are dB / 80): quiet moments stay nearly still and loud ones move fast, so the motion peaks where
the sound does. (Two demo runs each: starting proportional to the amplitude gave AV-Align 0.19
and 0.14, starting with the cube 0.25 and 0.23; loudness-motion sync 0.72 to 0.75 in all four.)
A translated white-noise image has the same statistics as the original, so every frame is still a
sample of the prior at the same W+ latent: the drift moves the texture, never the scene.

Smooth scenes (a sky with clouds) have little noise to move. The scene pan, a second scroll of
the same form, moves the 8 px feature maps right instead (`pan_features`, applied by
`Generator.synthesis`): the whole scene slides as one, wrapping around, and the finer layers draw
their detail on it, as clouds cross a windy sky. Each scroll's k reads the audio features, so
stage 2 learns which sounds pan and which do not (the layout term holds a still real scene, a
fire's glow, in place).

Offsets and speeds are shares of the frame (1 is a whole frame), so a speed means the same motion
at every resolution; the caps were tuned at 32 px, where 1 px is 1/32.

Frames between trajectory steps take the linearly interpolated offsets, like their latents. The
first frame is not moved, so a video starts exactly at its start image.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

# frame widths a step (4 px at 32 px); beyond this the detail only flickers
MAX_DRIFT_SPEED = 4 / 32
# The pan's cap (2 px at 32 px): the synthetic wind's clouds move up to half a frame width a
# second, 1/30 of the frame a step at 15 steps a second; at the drift's cap, rain (loud
# throughout) slid round the frame three times in 3 s.
MAX_PAN_SPEED = 2 / 32
# exp(k x) is the amplitude cubed when k = 3 x 4 ln 10 (features are dB / 80, averaged over
# the mel bands), and sigmoid(z) ~ exp(z) well below s_max
DRIFT_AMPLITUDE_POWER = 3.0
DRIFT_GAIN_INIT = DRIFT_AMPLITUDE_POWER * 4 * math.log(10.0)
# the speed (frame widths a step, 1 px at 32 px) at features of 0.4, the demo's loudest sounds,
# before training
INIT_SPEED = 1 / 32


class PacedScroll(nn.Module):
    """Audio features "... audio_dim" -> a scroll's speed and offsets (frame widths)."""

    def __init__(self, audio_dim: int, max_speed: float = MAX_DRIFT_SPEED) -> None:
        super().__init__()
        if audio_dim < 1:
            raise ValueError("the noise drift reads audio features: audio_dim must be >= 1")
        if max_speed <= INIT_SPEED:
            raise ValueError(
                f"max_speed must be above {INIT_SPEED:g} frame widths a step, got {max_speed:g}"
            )
        self.max_speed = max_speed
        self.loudness = nn.Linear(audio_dim, 1)
        with torch.no_grad():
            self.loudness.weight.fill_(DRIFT_GAIN_INIT / audio_dim)
            ratio = INIT_SPEED / max_speed
            self.loudness.bias.fill_(math.log(ratio / (1 - ratio)) - DRIFT_GAIN_INIT * 0.4)

    def speed(self, audio: Tensor) -> Tensor:
        """Frame widths a step, "... audio_dim" -> "..." in (0, max_speed)."""
        with torch.autocast(audio.device.type, enabled=False):
            z = self.loudness(audio.to(self.loudness.weight.dtype))
        return self.max_speed * torch.sigmoid(z[..., 0])

    def offsets(self, audio: Tensor, start: Tensor | None = None) -> Tensor:
        """Each step's offset "b t" from its audio features "b t audio_dim": the running sum of
        the speeds after `start`, the offset of the step before ("b" or a number), or from 0 at
        the sound's first step (None), which therefore does not move."""
        moved = torch.cumsum(self.speed(audio), dim=-1)
        if start is None:
            return moved - moved[..., :1]
        return moved + torch.as_tensor(start)[..., None]


def fourier_shift(x: Tensor, cells: Tensor, dim: int) -> Tensor:
    """`x` "b ..." (or "1 ...", broadcast) circularly shifted along `dim` by `cells` "b" (toward
    higher indices): fractional shifts by a phase shift of the spectrum, exact for whole cells,
    differentiable in `cells`; the result keeps `x`'s statistics and dtype."""
    length = x.shape[dim]
    work = torch.promote_types(x.dtype, torch.float32)
    cells = cells.to(work)
    spectrum = torch.fft.rfft(x.to(work), dim=dim)
    frequency = torch.fft.rfftfreq(length, device=x.device, dtype=work)
    phase = torch.polar(torch.ones_like(cells)[:, None], -2 * math.pi * cells[:, None] * frequency)
    view = [len(cells)] + [1] * (x.ndim - 1)
    view[dim] = len(frequency)
    shifted = torch.fft.irfft(spectrum * phase.reshape(view), n=length, dim=dim)
    return shifted.to(x.dtype)


def shift_noise(noise: Tensor, offset: Tensor) -> Tensor:
    """Noise images "1|b 1 r r" scrolled down by `offset` "b" frame heights ("b 1 r r"); the
    image's statistics stay those of the noise."""
    return fourier_shift(noise, offset * noise.shape[-2], dim=-2)


def pan_features(features: Tensor, offset: Tensor) -> Tensor:
    """Feature maps "b c r r" panned right by `offset` "b" frame widths (wrapping around: what
    leaves on the right comes back on the left)."""
    return fourier_shift(features, offset * features.shape[-1], dim=-1)
