"""Audio front end: load any sound file as mono float32, log-mel, windows aligned to video frames.

Conventions (shared by training, generation and the metrics):
- `load_audio` returns a 1-D float32 tensor at the requested rate, channels mixed down by
  their mean. Integer files are scaled to [-1, 1]; float files are kept as they are (values
  beyond +-1 are not clipped). Silence is valid; NaN/inf, empty or unreadable files are not.
- Frame t of a video at `fps` is shown during [t / fps, (t + 1) / fps) and its timestamp is the
  centre of that interval, (t + 0.5) / fps seconds. Its audio window of `window_length` samples
  is centred on that instant (see `segment_for_frames`).
- `LogMel` measures loudness against a fixed full-scale reference, not the loudest bin of each
  input, so a quiet clip stays quiet.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import av
import numpy as np
import soundfile as sf
import soxr
import torch
import torchaudio
from torch import nn
from torch.nn import functional as F

from sgvideo.errors import describe


class AudioError(ValueError):
    """A sound file that cannot be used: missing, unreadable, empty or non-finite."""


def load_audio(path: str | os.PathLike, sample_rate: int = 44100) -> torch.Tensor:
    """Read a sound file (or a video's audio track) as "samples" float32 mono at `sample_rate`.

    `read_audio(path).at(sample_rate)`: see there for the formats and errors.
    """
    return read_audio(path).at(sample_rate)


@dataclass(frozen=True)
class Sound:
    """A decoded, checked sound file: "samples" float32 mono at the file's own `rate`."""

    path: Path
    wave: torch.Tensor
    rate: int

    def at(self, sample_rate: int) -> torch.Tensor:
        """The samples at `sample_rate` (`resample`: any ratio)."""
        wave = resample(self.wave, self.rate, sample_rate)
        if not torch.isfinite(wave).all():  # float files may hold values near float32's maximum
            raise AudioError(f"{self.path}: samples overflow when resampled to {sample_rate} Hz")
        return wave


def read_audio(path: str | os.PathLike) -> Sound:
    """Decode a sound file (or a video's audio track) at its own rate, mixed down to mono.

    wav/flac/ogg/mp3 are read with soundfile; anything soundfile cannot read (m4a/aac, the audio
    track of mp4/mkv/webm, ...) with PyAV. Raises AudioError naming the file on any problem.
    Reading first and resampling later (`Sound.at`) lets a tool check its input before it
    knows the rate it needs, e.g. before loading a model.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"audio file not found: {path}")
    with _quiet_stderr():
        data, rate = _decode(path)
    if data.shape[0] == 0:
        raise AudioError(f"{path}: contains no audio samples")
    if rate <= 0:
        raise AudioError(f"{path}: the file gives an invalid sample rate ({rate} Hz)")
    wave = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32)).mean(dim=1)
    if not torch.isfinite(wave).all():
        raise AudioError(f"{path}: contains NaN or infinite samples")
    return Sound(path, wave.contiguous(), int(rate))


def resample(wave: torch.Tensor, rate: int, new_rate: int) -> torch.Tensor:
    """Resample "samples" from `rate` to `new_rate` Hz (soxr, high quality): any ratio, even
    44101 -> 44100, in time and memory linear in the length; round(samples * new_rate / rate)
    samples come out. Returned on the input's device; the input itself when the rates agree."""
    if rate == new_rate:
        return wave
    if rate <= 0 or new_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {rate} and {new_rate}")
    samples = wave.detach().to("cpu", torch.float32).numpy()
    out = soxr.resample(samples, int(rate), int(new_rate))
    return torch.from_numpy(out).to(wave.device)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null inside the block.

    libmpg123 (inside libsndfile) and libav print their complaints about a corrupt file
    straight to the C stderr; the AudioError we raise says what matters in one line. Output
    that other threads of this process write to stderr meanwhile is lost too.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _decode(path: Path) -> tuple[np.ndarray, int]:
    """The samples "samples channels" float32 and rate of `path`, through soundfile or PyAV.

    A corrupt file can fail anywhere inside either library, with any exception: every failure
    becomes an AudioError naming the file.
    """
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        return data, int(rate)
    except Exception as sf_error:  # LibsndfileError for a format it does not read, or worse
        return _read_pyav(path, sf_error)


def _read_pyav(path: Path, sf_error: Exception) -> tuple[np.ndarray, int]:
    """Decode the first audio stream with PyAV as "samples channels" float32."""
    try:
        container = av.open(str(path))
    except Exception as error:  # av.FFmpegError, UnicodeDecodeError, ...
        raise AudioError(
            f"{path}: cannot read audio, the file is corrupt or not a sound/video format "
            f"(soundfile: {describe(sf_error)}; PyAV: {describe(error)})"
        ) from error
    with container:
        if not container.streams.audio:
            raise AudioError(f"{path}: no audio stream in the file")
        if container.streams.audio[0].codec_context is None:
            raise AudioError(f"{path}: unknown audio codec (a corrupt header?), cannot decode")
        try:
            return _decode_stream(container, container.streams.audio[0], path)
        except AudioError:
            raise
        except Exception as error:  # a corrupt stream fails in many ways
            msg = f"{path}: cannot decode the audio stream (corrupt?): {describe(error)}"
            raise AudioError(msg) from error


def _decode_stream(
    container: av.container.InputContainer, stream: av.AudioStream, path: Path
) -> tuple[np.ndarray, int]:
    resampler = av.AudioResampler(format="fltp")
    chunks: list[np.ndarray] = []
    rate = stream.codec_context.sample_rate
    for frame in container.decode(stream):
        rate = frame.sample_rate
        chunks += [f.to_ndarray() for f in resampler.resample(frame)]
    chunks += [f.to_ndarray() for f in resampler.resample(None)]
    if not chunks:
        raise AudioError(f"{path}: contains no audio samples")
    return np.concatenate(chunks, axis=1).T, int(rate)


class LogMel(nn.Module):
    """Log-mel spectrogram in [0, 1]: "... samples" -> "... n_mels time".

    Power mel spectrogram (HTK mel scale, unnormalised triangular filters, Hann window, zero
    centre padding so that inputs shorter than `n_fft` work), converted to dB relative to a
    fixed reference: the power a full-scale (amplitude 1.0) sine puts in its STFT bin. So a
    full-scale tone reads about 0 dB, and 1.0 after scaling; everything at or below `-top_db`
    reads 0. A fixed reference (rather than each input's maximum) keeps loudness: the same
    sound at half the amplitude maps 6 dB lower. Always computed in float32, also under autocast.
    """

    def __init__(
        self,
        sample_rate: int = 44100,
        n_fft: int = 2048,
        hop_length: int = 512,
        n_mels: int = 128,
        top_db: float = 80.0,
    ) -> None:
        super().__init__()
        if top_db <= 0:
            raise ValueError(f"top_db must be positive, got {top_db}")
        self.top_db = float(top_db)
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=n_fft,
            hop_length=hop_length,
            n_mels=n_mels,
            power=2.0,
            center=True,
            pad_mode="constant",
        )
        window_sum = torch.hann_window(n_fft).sum().item()
        self.reference_power = (window_sum / 2) ** 2

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.shape[-1] == 0:
            raise ValueError("LogMel needs at least one sample, got an empty waveform")
        with torch.autocast(wave.device.type, enabled=False):
            power = self.mel(wave.float()) / self.reference_power
            floor = 10.0 ** (-self.top_db / 10.0)
            db = 10.0 * torch.log10(power.clamp(min=floor, max=1.0))
        return 1.0 + db / self.top_db


@dataclass(frozen=True)
class MelSettings:
    """How sound becomes log-mel: one set that the data, every stage and inference share.

    The stages link it from the data section (`--data.mel.n_mels 32` sets it everywhere) and
    keep it in their checkpoints' hyper-parameters as `mel`, so whoever loads a checkpoint hears
    sound the way it was trained to (`from_hparams`).
    """

    sample_rate: int = 44100
    n_mels: int = 128
    n_fft: int = 2048
    hop_length: int = 512

    def __post_init__(self) -> None:
        for name, value in self.as_dict().items():
            if value <= 0:
                raise ValueError(f"mel {name} must be positive, got {value}")

    @classmethod
    def of(cls, value: MelSettings | Mapping[str, Any]) -> MelSettings:
        """The settings themselves, or built from a mapping of their fields (as stored)."""
        return value if isinstance(value, cls) else cls(**value)

    @classmethod
    def from_hparams(
        cls, hparams: Mapping[str, Any], source: str = "the checkpoint"
    ) -> MelSettings:
        """The settings a stage checkpoint's hyper-parameters hold: `mel`, or the flat keys
        that checkpoints written before `MelSettings` have."""
        if "mel" in hparams:
            return cls.of(hparams["mel"])
        names = [field.name for field in fields(cls)]
        missing = [name for name in names if name not in hparams]
        if missing:
            raise ValueError(f"{source}'s hyper-parameters lack the audio settings {missing}")
        return cls(**{name: hparams[name] for name in names})

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def log_mel(self) -> LogMel:
        return LogMel(self.sample_rate, self.n_fft, self.hop_length, self.n_mels)


def window_length(sample_rate: int, window_s: float) -> int:
    """Samples in a window of `window_s` seconds (rounded, at least 1)."""
    if window_s <= 0:
        raise ValueError(f"window_s must be positive, got {window_s}")
    return max(1, round(sample_rate * window_s))


def frame_count(num_samples: int, sample_rate: int, fps: float) -> int:
    """The frames of a video of `num_samples` of audio at `fps`: round(duration x fps), at least
    one (what `sgvideo generate` writes and the metrics expect)."""
    return max(1, round(num_samples * fps / sample_rate))


def frame_centers(
    num_frames: int, sample_rate: int, fps: float, first_frame: int = 0
) -> torch.Tensor:
    """Sample index of each frame's timestamp, round((t + 0.5) / fps * sample_rate): "t"."""
    t = torch.arange(first_frame, first_frame + num_frames, dtype=torch.float64)
    return torch.round((t + 0.5) / fps * sample_rate).long()


def segment_for_frames(
    wave: torch.Tensor,
    sample_rate: int,
    num_frames: int,
    fps: float,
    window_s: float,
    first_frame: int = 0,
    inside: bool = False,
) -> torch.Tensor:
    """One audio window per video frame: "... samples" -> "... t window".

    Window t (frame `first_frame + t`) has `window_length(sample_rate, window_s)` = L samples and
    covers samples [c - L // 2, c - L // 2 + L) where c = `frame_centers(...)`: the sample at
    index L // 2 of the window is the frame's timestamp. Samples outside the waveform are zeros,
    so a clip shorter than a window still gives `num_frames` windows. `first_frame` lets long
    audio be cut in chunks of frames; the result is identical to slicing one big call.
    With `inside`, a window that would reach past either end of a waveform at least one window
    long is shifted inside it instead: a frame near the start of a sound is then described by
    sound, not by the silence of the padding (which would make the first frames jump).
    No Python loop over frames: one gather from the (padded) waveform.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if wave.dim() < 1 or wave.shape[-1] == 0:
        shape = tuple(wave.shape)
        raise ValueError(f"wave must be '... samples' with at least one sample, got {shape}")
    length = window_length(sample_rate, window_s)
    starts = frame_centers(num_frames, sample_rate, fps, first_frame) - length // 2
    n = wave.shape[-1]
    if inside and n >= length:
        starts = starts.clamp(0, n - length)
    lo, hi = int(starts[0]), int(starts[-1]) + length
    # Keep only the samples the windows touch, then zero-pad what lies outside the waveform.
    piece = wave[..., max(lo, 0) : min(max(hi, 0), n)]
    left = min(max(-lo, 0), hi - lo)
    piece = F.pad(piece, (left, (hi - lo) - left - piece.shape[-1]))
    # Index "t length" into the piece: only the windows are materialised (index_select on a
    # batched unfold view would copy every position first).
    index = (starts - lo)[:, None] + torch.arange(length)
    return piece[..., index.to(wave.device)]
