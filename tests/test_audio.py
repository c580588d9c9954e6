"""sgvideo.audio: loading every format, errors by message, log-mel, frame-aligned windows."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

from sgvideo.audio import (
    AudioError,
    LogMel,
    MelSettings,
    frame_centers,
    frame_count,
    load_audio,
    segment_for_frames,
    window_length,
)
from sgvideo.video_io import write_video
from tests.capped import run_capped

RATE = 44100


def sine(freq: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(wave: torch.Tensor, rate: int) -> float:
    spectrum = torch.fft.rfft(wave.double() * torch.hann_window(len(wave), dtype=torch.float64))
    return float(spectrum.abs().argmax()) * rate / len(wave)


# ---------------------------------------------------------------- loading


@pytest.mark.parametrize("source_rate", [48000, 22050])
def test_resampling_keeps_the_frequency(tmp_path, source_rate):
    path = tmp_path / "tone.wav"
    sf.write(path, sine(440.0, source_rate, 1.0), source_rate, subtype="FLOAT")
    wave = load_audio(path, RATE)
    assert wave.dtype == torch.float32 and wave.dim() == 1
    assert len(wave) == RATE
    assert peak_hz(wave, RATE) == pytest.approx(440.0, abs=1.0)
    assert float(wave.abs().max()) == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize(
    ("name", "rate", "channels", "subtype", "fmt"),
    [
        ("stereo48k.wav", 48000, 2, "PCM_16", "WAV"),
        ("u8.wav", 22050, 1, "PCM_U8", "WAV"),
        ("pcm24.wav", 44100, 1, "PCM_24", "WAV"),
        ("pcm32.wav", 32000, 1, "PCM_32", "WAV"),
        ("float.wav", 16000, 1, "FLOAT", "WAV"),
        ("six.flac", 48000, 6, "PCM_16", "FLAC"),
        ("tone.ogg", 44100, 2, "VORBIS", "OGG"),
    ],
)
def test_formats_load_to_the_right_duration(tmp_path, name, rate, channels, subtype, fmt):
    seconds = 0.75
    tone = sine(440.0, rate, seconds)
    data = np.stack([tone] * channels, axis=1)
    path = tmp_path / name
    sf.write(path, data, rate, subtype=subtype, format=fmt)
    wave = load_audio(path, RATE)
    assert len(wave) == math.ceil(len(tone) * RATE / rate)
    # Identical channels mix down to the same tone; integer files are scaled to [-1, 1].
    assert float(wave.abs().max()) == pytest.approx(0.5, abs=0.03)
    assert peak_hz(wave, RATE) == pytest.approx(440.0, abs=2.0)


def test_stereo_mixdown_is_the_channel_mean(tmp_path):
    left, right = sine(440.0, RATE, 0.2), sine(1000.0, RATE, 0.2, amplitude=0.25)
    path = tmp_path / "lr.wav"
    sf.write(path, np.stack([left, right], axis=1), RATE, subtype="FLOAT")
    torch.testing.assert_close(load_audio(path, RATE), torch.from_numpy((left + right) / 2))


def test_silence_is_valid(tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(1000, np.float32), RATE)
    assert torch.equal(load_audio(path, RATE), torch.zeros(1000))


def test_mp4_audio_track_loads_with_the_right_duration(tmp_path):
    seconds, fps = 1.5, 10
    audio = sine(440.0, RATE, seconds)
    frames = np.zeros((round(seconds * fps), 16, 16, 3), np.uint8)
    path = write_video(tmp_path / "clip.mp4", frames, fps, audio=audio, sample_rate=RATE)
    wave = load_audio(path, 22050)
    # AAC pads the last frame: the length matches within one AAC frame (1024 samples at 44.1k).
    assert abs(len(wave) - round(seconds * 22050)) < 1024 * 22050 / RATE
    assert peak_hz(wave, 22050) == pytest.approx(440.0, abs=2.0)


def test_mp3_loads(tmp_path):
    path = tmp_path / "tone.mp3"
    sf.write(path, sine(440.0, 48000, 1.0), 48000, format="MP3")
    wave = load_audio(path, RATE)
    assert abs(len(wave) - RATE) < 1200  # mp3 framing may add up to one frame
    assert peak_hz(wave, RATE) == pytest.approx(440.0, abs=2.0)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.wav"
    with pytest.raises(AudioError, match="audio file not found") as info:
        load_audio(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("name", ["corrupt.wav", "corrupt.mp4"])
def test_corrupt_bytes(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"this is not a sound file\n" * 100)
    with pytest.raises(AudioError, match="corrupt or not a sound/video format") as info:
        load_audio(path)
    assert str(path) in str(info.value)


def test_video_without_audio(tmp_path):
    path = write_video(tmp_path / "mute.mp4", np.zeros((4, 16, 16, 3), np.uint8), fps=8)
    with pytest.raises(AudioError, match="no audio stream") as info:
        load_audio(path)
    assert str(path) in str(info.value)


def test_zero_samples(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, np.float32), RATE)
    with pytest.raises(AudioError, match="contains no audio samples") as info:
        load_audio(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_samples(tmp_path, bad):
    wave = sine(440.0, RATE, 0.1)
    wave[50] = bad
    path = tmp_path / "bad.wav"
    sf.write(path, wave, RATE, subtype="FLOAT")
    with pytest.raises(AudioError, match="contains NaN or infinite samples") as info:
        load_audio(path)
    assert str(path) in str(info.value)


def test_audio_error_is_a_value_error():
    assert issubclass(AudioError, ValueError)


# ---------------------------------------------------------------- log-mel


def test_logmel_shape_and_range():
    mel = LogMel(RATE, n_fft=512, hop_length=128, n_mels=40)
    wave = torch.randn(2, 3, 4000) * 0.3
    out = mel(wave)
    assert out.shape == (2, 3, 40, 4000 // 128 + 1)
    assert out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    # Batched = one by one.
    torch.testing.assert_close(out[1, 2], mel(wave[1, 2]))


def test_logmel_reference_is_fixed_full_scale():
    mel = LogMel(RATE)
    tone = torch.from_numpy(sine(1000.0, RATE, 0.5, amplitude=1.0))
    assert float(mel(tone).max()) == pytest.approx(1.0)  # full scale reads 0 dB
    assert float(mel(torch.zeros(4096)).max()) == 0.0  # silence reads the floor
    # Louder never reads lower, and halving the amplitude is -6.02 dB everywhere above the floor.
    levels = [float(mel(tone * a).mean()) for a in (0.01, 0.1, 0.3, 1.0)]
    assert levels == sorted(levels) and levels[0] < levels[-1]
    loud, quiet = mel(tone * 0.5), mel(tone * 0.25)
    above = quiet > 0.01
    expected = loud[above] - 20 * math.log10(2) / 80.0
    torch.testing.assert_close(quiet[above], expected, atol=1e-4, rtol=0)


def test_logmel_matches_a_reference_computation():
    import torchaudio

    wave = torch.randn(3000) * 0.1
    n_fft, top_db = 256, 60.0
    power = torchaudio.transforms.MelSpectrogram(
        RATE, n_fft=n_fft, hop_length=64, n_mels=16, pad_mode="constant"
    )(wave)
    ref = (torch.hann_window(n_fft).sum() / 2) ** 2
    db = (10 * torch.log10(power / ref)).clamp(-top_db, 0)
    expected = (db + top_db) / top_db
    out = LogMel(RATE, n_fft=n_fft, hop_length=64, n_mels=16, top_db=top_db)(wave)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_logmel_inputs_shorter_than_n_fft():
    out = LogMel(RATE, n_fft=2048, hop_length=512)(torch.randn(4, 100))
    assert out.shape == (4, 128, 1)
    assert torch.isfinite(out).all()


def test_logmel_rejects_empty_input():
    with pytest.raises(ValueError, match="at least one sample"):
        LogMel()(torch.zeros(2, 0))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_logmel_cuda_matches_cpu():
    mel = LogMel(RATE, n_fft=512, hop_length=128, n_mels=40)
    wave = torch.randn(2, 5000) * 0.2
    with torch.autocast("cuda", dtype=torch.bfloat16):
        gpu = mel.cuda()(wave.cuda())
    assert gpu.dtype == torch.float32
    torch.testing.assert_close(gpu.cpu(), mel.cpu()(wave), atol=1e-4, rtol=0)


# ---------------------------------------------------------------- frame windows


def test_window_length_and_frame_count():
    assert window_length(44100, 1 / 3) == 14700
    assert window_length(16000, 1e-9) == 1
    assert frame_count(44100, 44100, 30) == 30
    assert frame_count(44101, 44100, 30) == 30 and frame_count(45636, 44100, 30) == 31
    assert frame_count(10, 44100, 30) == 1
    with pytest.raises(ValueError, match="window_s must be positive"):
        window_length(44100, 0)


def test_frame_centers_are_display_interval_centres():
    centres = frame_centers(3, 1000, 4.0)
    assert centres.tolist() == [125, 375, 625]  # (t + 0.5) / 4 s at 1 kHz


def test_impulse_lands_at_the_window_centre():
    rate, fps, window_s = 1000, 10.0, 0.05
    length = window_length(rate, window_s)
    for frame in (0, 3, 9):
        wave = torch.zeros(rate)
        wave[round((frame + 0.5) / fps * rate)] = 1.0
        windows = segment_for_frames(wave, rate, 10, fps, window_s)
        assert windows.shape == (10, length)
        hits = windows.nonzero().tolist()
        assert hits == [[frame, length // 2]]


def test_windows_tile_the_clip_when_window_is_one_frame():
    rate, fps = 100, 5.0
    wave = torch.arange(200, dtype=torch.float32)
    windows = segment_for_frames(wave, rate, 10, fps, 1 / fps)
    torch.testing.assert_close(windows.flatten(), wave)


def test_edge_windows_are_zero_padded():
    rate, fps = 100, 10.0
    wave = torch.ones(100)
    windows = segment_for_frames(wave, rate, 10, fps, window_s=0.3)  # 30 samples
    # Frame 0 is centred on sample 5: window covers [-10, 20), 10 padded zeros in front.
    assert windows[0, :10].abs().sum() == 0 and windows[0, 10:].eq(1).all()
    # Frame 9 is centred on sample 95: window covers [80, 110), 10 padded zeros at the end.
    assert windows[9, :20].eq(1).all() and windows[9, 20:].abs().sum() == 0
    assert windows[1:9].eq(1).all()


def test_clip_shorter_than_one_window():
    wave = torch.ones(7)
    windows = segment_for_frames(wave, 100, 4, fps=50.0, window_s=0.5)
    assert windows.shape == (4, 50)
    assert windows.sum(dim=1).tolist() == [7.0, 7.0, 7.0, 7.0]
    # Frames beyond the audio get silence.
    assert segment_for_frames(wave, 100, 3, fps=1.0, window_s=0.1).abs().sum() == 0


def test_chunks_match_one_call_and_batches_match_rows():
    rate, fps, window_s = 8000, 30.0, 0.1
    wave = torch.randn(2, rate * 2)
    whole = segment_for_frames(wave, rate, 60, fps, window_s)
    assert whole.shape == (2, 60, window_length(rate, window_s))
    chunks = [segment_for_frames(wave, rate, 20, fps, window_s, first_frame=s) for s in (0, 20, 40)]
    torch.testing.assert_close(torch.cat(chunks, dim=1), whole)
    torch.testing.assert_close(whole[1], segment_for_frames(wave[1], rate, 60, fps, window_s))
    # Reference: explicit slicing of a zero-padded copy.
    length = window_length(rate, window_s)
    padded = torch.nn.functional.pad(wave[0], (length, length))
    starts = frame_centers(60, rate, fps) - length // 2 + length
    reference = torch.stack([padded[s : s + length] for s in starts.tolist()])
    torch.testing.assert_close(whole[0], reference)


def test_segment_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_frames must be at least 1"):
        segment_for_frames(torch.ones(10), 10, 0, 1.0, 0.1)
    with pytest.raises(ValueError, match="fps must be positive"):
        segment_for_frames(torch.ones(10), 10, 2, 0.0, 0.1)
    with pytest.raises(ValueError, match="at least one sample"):
        segment_for_frames(torch.ones(0), 10, 2, 1.0, 0.1)


# ---------------------------------------------------------------- odd rates, broken headers

ODD_RATE_CHILD = r"""
import time
from sgvideo.audio import load_audio

start = time.perf_counter()
wave = load_audio(sys.argv[2], 44100)
print(len(wave), time.perf_counter() - start)
"""


@pytest.mark.parametrize("source_rate", [44101, 44056, 7999, 96001])
def test_any_rate_resamples_in_bounded_memory_and_time(tmp_path, source_rate):
    """A 44101 Hz file once built a sinc kernel sized by the reduced ratio (24 GB)."""
    path = tmp_path / f"r{source_rate}.wav"
    sf.write(path, sine(440.0, source_rate, 3.0), source_rate)
    done = run_capped(ODD_RATE_CHILD, str(path), headroom=512 * 2**20, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    length, seconds = done.stdout.split()
    assert int(length) == round(3.0 * source_rate * RATE / source_rate)
    assert float(seconds) < 2.0
    wave = load_audio(path, RATE)
    assert peak_hz(wave, RATE) == pytest.approx(440.0, abs=1.0)
    assert float(wave.abs().max()) == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize(
    ("source_rate", "rate"),
    [(44100, 48000), (48000, 44100), (22050, 44100), (44100, 22050), (16000, 44100)],
)
def test_ordinary_ratios_match_torchaudio(tmp_path, source_rate, rate):
    """soxr and torchaudio's sinc resampler agree on sound well below both Nyquist rates."""
    t = np.arange(source_rate) / source_rate
    tones = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 3000 * t)
    path = tmp_path / "tones.wav"
    sf.write(path, tones.astype(np.float32), source_rate, subtype="FLOAT")
    ours = load_audio(path, rate)
    reference = torchaudio.functional.resample(
        torch.from_numpy(tones.astype(np.float32)), source_rate, rate
    )
    assert len(ours) == len(reference) == rate
    inner = slice(100, -100)  # the two treat the signal's ends differently
    torch.testing.assert_close(ours[inner], reference[inner], atol=2e-3, rtol=0)


def test_unknown_codec_in_a_wav_header_names_the_file(tmp_path):
    fmt = struct.pack("<HHIIHH", 0x1234, 1, 16000, 32000, 2, 16)  # no such format tag
    body = b"WAVEfmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 1600)
    path = tmp_path / "odd.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body) + 1600) + body + bytes(1600))
    with pytest.raises(AudioError, match="unknown audio codec") as info:
        load_audio(path)
    assert str(path) in str(info.value)


def test_decoder_complaints_about_a_corrupt_mp3_stay_off_stderr(tmp_path, capfd):
    path = tmp_path / "noisy.mp3"
    sf.write(path, sine(440.0, RATE, 1.0), RATE, format="MP3")
    data = np.frombuffer(path.read_bytes(), np.uint8).copy()
    rng = np.random.default_rng(0)
    data[rng.integers(1000, len(data), 300)] ^= 0xFF  # libmpg123 resyncs, and says so
    path.write_bytes(data.tobytes())
    try:
        assert torch.isfinite(load_audio(path)).all()
    except AudioError as error:
        assert str(path) in str(error)
    assert capfd.readouterr().err == ""


def test_windows_inside_the_sound_shift_at_its_ends_instead_of_padding():
    rate, fps, seconds = 100, 10.0, 0.3  # 30-sample windows, frames every 10 samples
    wave = torch.arange(1.0, 101.0)  # 1 s: samples 1 .. 100
    padded = segment_for_frames(wave, rate, 10, fps, seconds)
    inside = segment_for_frames(wave, rate, 10, fps, seconds, inside=True)
    # frame 0 (timestamp sample 5) would start at -10: zeros then samples 1 .. 20
    assert padded[0, :10].eq(0).all() and padded[0, 10] == 1
    torch.testing.assert_close(inside[0], wave[:30])
    torch.testing.assert_close(inside[-1], wave[-30:])  # frame 9 would reach sample 110
    torch.testing.assert_close(inside[3:7], padded[3:7])  # frames clear of the ends: as before
    short = torch.ones(20)  # shorter than a window: still zero-padded
    torch.testing.assert_close(
        segment_for_frames(short, rate, 2, fps, seconds, inside=True),
        segment_for_frames(short, rate, 2, fps, seconds),
    )


def test_mel_settings_read_nested_and_flat_hparams_and_build_the_same_log_mel() -> None:
    settings = MelSettings(sample_rate=16000, n_mels=24, n_fft=512, hop_length=128)
    flat = {"sample_rate": 16000, "n_mels": 24, "n_fft": 512, "hop_length": 128, "lr": 1e-3}
    assert MelSettings.from_hparams({"mel": settings.as_dict(), "lr": 1e-3}) == settings
    assert MelSettings.from_hparams(flat) == settings  # checkpoints from before MelSettings
    assert MelSettings.of(settings.as_dict()) == settings
    wave = torch.randn(2, 4000)
    torch.testing.assert_close(settings.log_mel()(wave), LogMel(16000, 512, 128, 24)(wave))


def test_mel_settings_refuse_missing_and_non_positive_values() -> None:
    with pytest.raises(ValueError, match=r"x.ckpt's hyper-parameters lack .*'n_fft'"):
        MelSettings.from_hparams({"sample_rate": 1, "n_mels": 2, "hop_length": 3}, "x.ckpt")
    with pytest.raises(ValueError, match="mel hop_length must be positive, got 0"):
        MelSettings(hop_length=0)
