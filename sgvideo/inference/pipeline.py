"""The stage-2 pipeline at inference: a waveform -> frame latents -> frames, chunk by chunk.

`batch_size` frames at a time, so memory stays flat however long the sound: step t (timestamp
(t + 0.5) / rate) gets the audio window centred there (`segment_for_frames`), its log-mel and
its sound latent w_a^t = w_avg + E(mel) (the stage-1 encoder); the stage-2 trajectory net turns
the sound latents into frame latents w^t, carried from chunk to chunk; an optional exponential
moving average smooths them, w_s^t = smoothing * w_s^{t-1} + (1 - smoothing) * w^t with
w_s^0 = w^0 (off by default: the trained trajectory is as smooth as the real videos, and
smoothing delays the motion that lands on a sound's onsets); the frozen StyleGAN2 renders
G(w_s^t).

The trajectory steps at the rate it was trained at (one step per training frame, the
checkpoint's `window_seconds`), causally: step t reads the previous latent, the sound latent of
the stage-1 window centred on the step and the step's own audio features, with the GRU state
carried from chunk to chunk, which equals `TrajectoryGenerator.rollout` over the whole sound.
Each video frame takes the latent interpolated at its timestamp, so a video at the training
rate is the trajectory itself. A net with `noise_drift` also scrolls the generator's noise images:
their offsets are summed step by step from the same audio features (carried from chunk to
chunk) and interpolated at each frame's timestamp like the latents; one with `scene_pan` pans
the scene the same way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

import numpy as np
import torch
from einops import rearrange
from torch import Tensor

from sgvideo.audio import frame_count, resample, segment_for_frames
from sgvideo.checkpoints.stylegan2 import load_generator
from sgvideo.checkpoints.trajectory import load_trajectory_checkpoint
from sgvideo.files import saved_path
from sgvideo.inference.media import seeded
from sgvideo.inference.sound import ExponentialSmoother, SoundInverter
from sgvideo.models.inversion_encoder import load_inversion_encoder
from sgvideo.models.stylegan2 import Generator
from sgvideo.models.trajectory import TrajectoryGenerator, frame_audio_features

DEFAULT_SMOOTHING = 0.0


class SoundToVideo:
    """Stage-2 generation: load the models once, then turn waveforms into frames chunk by chunk.

    `step_seconds` is the trajectory's training step (one training frame); `start_latents` a
    text-init checkpoint's category -> start latent "n_latent style_dim". Also usable as the
    `VideoGenerator` that `sgvideo evaluate` calls: `pipeline(waveform, sample_rate, fps, seed)`.
    """

    def __init__(
        self,
        generator: Generator,
        inverter: SoundInverter,
        trajectory: TrajectoryGenerator,
        step_seconds: float = 1.0 / 3.0,
        noise_mode: str = "const",
        start_latents: Mapping[str, Tensor] | None = None,
        batch_size: int = 16,
        device: str | torch.device = "cpu",
    ) -> None:
        shape = (generator.n_latent, generator.style_dim)
        for name, net in (("inversion encoder", inverter.encoder), ("trajectory net", trajectory)):
            if (net.n_latent, net.style_dim) != shape:
                raise ValueError(
                    f"the {name} works on W+ latents of {net.n_latent} x {net.style_dim} but the "
                    f"generator on {shape[0]} x {shape[1]}: use the stages trained for it"
                )
        if batch_size < 1 or not step_seconds > 0:
            raise ValueError(
                f"batch_size must be >= 1 and step_seconds > 0, got {batch_size}, {step_seconds}"
            )
        if trajectory.audio_dim not in (0, inverter.encoder.n_mels):
            raise ValueError(
                f"the trajectory net reads {trajectory.audio_dim} audio features per frame but "
                f"the sound's log-mel has {inverter.encoder.n_mels} bins"
            )
        self.device = torch.device(device)
        self.generator = generator.eval().requires_grad_(False).to(self.device)
        self.inverter = inverter.to(self.device)
        self.trajectory = trajectory.eval().requires_grad_(False).to(self.device)
        self.step_seconds = float(step_seconds)
        self.noise_mode = noise_mode
        self.start_latents = dict(start_latents or {})
        self.batch_size = int(batch_size)

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: str | os.PathLike,
        device: str | torch.device = "cpu",
        batch_size: int = 16,
        generator_path: str | os.PathLike | None = None,
        inversion_path: str | os.PathLike | None = None,
    ) -> SoundToVideo:
        """Everything from a stage-2 checkpoint; the frozen nets come from the paths saved in it
        (`saved_path`) unless `generator_path` / `inversion_path` override them (e.g. on
        another machine)."""
        trajectory, hparams = load_trajectory_checkpoint(checkpoint)
        generator = load_generator(
            generator_path or saved_path(hparams["generator_path"], checkpoint)
        )
        encoder, _ = load_inversion_encoder(
            inversion_path or saved_path(hparams["inversion_path"], checkpoint)
        )
        sound_window = hparams.get("sound_window_seconds", hparams.get("window_seconds"))
        return cls(
            generator,
            SoundInverter.from_hparams(
                encoder, generator.w_avg, {**hparams, "window_seconds": sound_window}
            ),
            trajectory,
            step_seconds=hparams["window_seconds"],
            noise_mode=hparams.get("noise_mode", "const"),
            start_latents=hparams.get("start_latents"),
            batch_size=batch_size,
            device=device,
        )

    @property
    def sample_rate(self) -> int:
        return self.inverter.sample_rate

    @property
    def size(self) -> int:
        return self.generator.size

    # ------------------------------------------------------------------ start latents

    def audio_latent(self, wave: Tensor, fps: float) -> Tensor:
        """The first frame's sound latent "n s" (the training's `init: audio`)."""
        return self.inverter.for_frames(wave, fps, 0, 1)[0]

    def category_latent(self, category: str) -> Tensor:
        """A text-init checkpoint's CLIP-chosen start latent of `category`: "n s"."""
        if category not in self.start_latents:
            known = sorted(self.start_latents) or "none: the checkpoint was trained with init audio"
            raise ValueError(f"no start latent for category {category!r}; known: {known}")
        return self.start_latents[category].to(self.device)

    # ------------------------------------------------------------------ latents and frames

    def frame_count(self, num_samples: int, fps: float) -> int:
        return frame_count(num_samples, self.sample_rate, fps)

    def _noise(self, seed: int, first: int, stop: int) -> Tensor | None:
        """Trajectory noise "t noise_dim" of frames first .. stop - 1, each frame seeded by
        (seed, frame index) so that overlapping windows and any chunking see the same noise."""
        dim = self.trajectory.noise_dim
        if dim == 0:
            return None
        rows = [
            np.random.default_rng([seed % 2**32, t]).standard_normal(dim)
            for t in range(first, stop)
        ]
        return torch.from_numpy(np.stack(rows)).float().to(self.device)

    def _chunks(self, total: int) -> Iterator[tuple[int, int]]:
        for first in range(0, total, self.batch_size):
            yield first, min(first + self.batch_size, total)

    @property
    def step_rate(self) -> float:
        """Trajectory steps per second of sound: the rate of the training frames."""
        return 1.0 / self.step_seconds

    def frame_features(self, wave: Tensor, rate: float, first: int, count: int) -> Tensor | None:
        """Audio features "t n_mels" of steps first .. first + count - 1 (each step's own
        1 / rate segment), or None for a net that reads none."""
        if not self.trajectory.audio_dim:
            return None
        inverter = self.inverter
        segments = segment_for_frames(
            wave, inverter.sample_rate, count, rate, 1.0 / rate, first_frame=first
        )
        return frame_audio_features(inverter.mel(segments.to(self.device)))

    @torch.no_grad()
    def keyframes(
        self, wave: Tensor, rate: float, w0: Tensor, seed: int = 0
    ) -> Iterator[tuple[Tensor, Tensor | None]]:
        """The trajectory stepped `rate` times a second of sound, one chunk at a time: its
        latents "t n s" and its scroll offsets "t scroll" (the `noise_drift` then the
        `scene_pan` column, whichever the net has; None for neither), each scroll's sum carried
        from chunk to chunk. Each chunk's audio features are read once for both."""
        starts: tuple[Tensor | None, Tensor | None] = (None, None)
        state = None
        for first, stop in self._chunks(self.frame_count(wave.shape[-1], rate)):
            count = stop - first
            w_a = self.inverter.for_frames(wave, rate, first, count)
            audio = self.frame_features(wave, rate, first, count)
            noise = self._noise(seed, first, stop)
            if state is None:
                state = self.trajectory.initial_state(
                    w0[None], w_a[:1], None if audio is None else audio[:1]
                )
            chunk = []
            for t in range(count):
                w, state = self.trajectory.step(
                    state,
                    w_a[t : t + 1],
                    None if audio is None else audio[t : t + 1],
                    None if noise is None else noise[t : t + 1],
                )
                chunk.append(w)
            offsets = self.trajectory.scroll_offsets(audio, starts)
            starts = tuple(None if o is None else o[-1] for o in offsets)
            columns = [o for o in offsets if o is not None]
            yield torch.cat(chunk), torch.stack(columns, dim=-1) if columns else None

    @torch.no_grad()
    def frame_steps(
        self, wave: Tensor, fps: float, w0: Tensor, seed: int = 0
    ) -> Iterator[tuple[Tensor, Tensor | None, Tensor | None]]:
        """The trajectory at `fps`, chunk by chunk: each video frame's latent "t n s"
        (unsmoothed), noise offset "t" (`noise_drift`) and pan offset "t" (`scene_pan`; None for
        a scroll the net lacks).

        The trajectory steps at the rate it was trained at (`step_rate`); each video frame takes
        the keyframes' values interpolated linearly at its timestamp.
        """
        flat = self.generator.n_latent * self.generator.style_dim
        packed = (
            torch.cat([rearrange(w, "t n s -> t (n s)"), *([] if o is None else [o])], dim=-1)
            for w, o in self.keyframes(wave, self.step_rate, w0, seed)
        )
        present = (self.trajectory.noise_drift, self.trajectory.scene_pan)
        for chunk in self._at_frames(packed, wave, fps):
            columns = iter(chunk[:, flat:].unbind(-1))
            noise, pan = (None if scroll is None else next(columns) for scroll in present)
            yield (
                rearrange(chunk[:, :flat], "t (n s) -> t n s", n=self.generator.n_latent),
                noise,
                pan,
            )

    def raw_latents(self, wave: Tensor, fps: float, w0: Tensor, seed: int = 0) -> Iterator[Tensor]:
        """The frame latents at `fps` (unsmoothed), one "t n s" chunk at a time."""
        return (w for w, _, _ in self.frame_steps(wave, fps, w0, seed))

    def _at_frames(
        self, keyframe_chunks: Iterator[Tensor], wave: Tensor, fps: float
    ) -> Iterator[Tensor]:
        """Per-step values ("t ..." chunks at `step_rate`) -> the same at each video frame's
        timestamp, interpolated linearly, one chunk at a time."""
        keyframes = _Keyframes(keyframe_chunks, self.frame_count(wave.shape[-1], self.step_rate))
        for first, stop in self._chunks(self.frame_count(wave.shape[-1], fps)):
            times = (torch.arange(first, stop, dtype=torch.float64) + 0.5) / fps
            position = (times * self.step_rate - 0.5).clamp(min=0.0)
            lower = position.floor().long()
            low, high = keyframes.around(lower)
            weight = (position - lower).float().to(self.device)
            yield torch.lerp(low, high, weight.reshape(-1, *[1] * (low.ndim - 1)))

    def latents(
        self,
        wave: Tensor,
        fps: float,
        w0: Tensor,
        seed: int = 0,
        smoothing: float = DEFAULT_SMOOTHING,
    ) -> Iterator[Tensor]:
        """Smoothed frame latents "t n s", chunk by chunk."""
        smoother = ExponentialSmoother(smoothing)
        for chunk in self.raw_latents(wave, fps, w0, seed):
            yield smoother(chunk)

    @torch.no_grad()
    def frames(
        self,
        wave: Tensor,
        fps: float,
        w0: Tensor,
        seed: int = 0,
        smoothing: float = DEFAULT_SMOOTHING,
    ) -> Iterator[Tensor]:
        """Frames "t 3 h w" in about [-1, 1], chunk by chunk, round(duration x fps) in all.

        With the generator's noise_mode "random", noise follows the torch RNG: seed it (as
        `generate_video` and `__call__` do) for repeatable frames.
        """
        smoother = ExponentialSmoother(smoothing)
        for w, noise, pan in self.frame_steps(wave, fps, w0, seed):
            yield self.generator.synthesis(smoother(w), self.noise_mode, noise, pan)

    def __call__(
        self,
        waveform: Tensor,
        sample_rate: int,
        fps: float,
        seed: int,
        smoothing: float = DEFAULT_SMOOTHING,
    ) -> Tensor:
        """`sgvideo evaluate`'s VideoGenerator: a waveform -> all its frames "t 3 h w" in [-1, 1].

        Starts from the first window's sound latent (the training's `init: audio`); `seed`
        seeds the trajectory and synthesis noise.
        """
        wave = torch.as_tensor(waveform, dtype=torch.float32)
        if sample_rate != self.sample_rate:
            wave = resample(wave, int(sample_rate), self.sample_rate)
        with seeded(seed):
            w0 = self.audio_latent(wave, fps)
            return torch.cat([f.cpu() for f in self.frames(wave, fps, w0, seed, smoothing)])


class _Keyframes:
    """Keyframe rows ("t ...", one per trajectory step) pulled on demand from a chunked
    iterator; rows no longer needed are dropped, so memory stays flat however long the sound."""

    def __init__(self, chunks: Iterator[Tensor], count: int) -> None:
        self.chunks = chunks
        self.count = count
        self.first = 0  # keyframe index of rows[0]
        self.rows: Tensor | None = None

    def around(self, lower: Tensor) -> tuple[Tensor, Tensor]:
        """Keyframes at ascending indices `lower` and at `lower + 1` (both clamped to the
        last keyframe): two "t ..." tensors."""
        lower = lower.clamp(max=self.count - 1)
        upper = (lower + 1).clamp(max=self.count - 1)
        while self.rows is None or self.first + len(self.rows) <= int(upper.max()):
            chunk = next(self.chunks)
            self.rows = chunk if self.rows is None else torch.cat([self.rows, chunk])
        drop = int(lower.min()) - self.first
        self.rows, self.first = self.rows[drop:], self.first + drop
        return self.rows[lower - self.first], self.rows[upper - self.first]
