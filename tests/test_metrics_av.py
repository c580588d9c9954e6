"""AV-Align on synthetic flash/boom clips, and the CLIP audio-visual score."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from sgvideo.metrics import AVAlign, CLIPAudioVisualScore, av_align
from sgvideo.metrics.av_align import (
    audio_peak_times,
    av_align_score,
    peak_iou,
    video_peak_times,
)

FPS, FRAMES, RATE = 10, 40, 16000
EVENTS = (8, 20, 31)  # frames where the picture jumps and the sound booms


def _jumping_frames() -> np.ndarray:
    """Uint8 "t h w 3": a smooth pattern drifting ever slower, with a fast jump at each event.

    Motion never stops (a still stretch gives equal flow values, and OpenCV's float noise
    between them makes arbitrary strict maxima), and it slows down strictly between events, so
    the event frames are the only strict local maxima of the flow magnitude.
    """
    speeds, last = [], -3
    for t in range(FRAMES):
        last = t if t in EVENTS else last
        speeds.append(6.0 if t in EVENTS else 1.5 * 0.8 ** (t - last))
    y, x = np.mgrid[0:64, 0:64].astype(np.float64)
    frames = []
    for offset in np.cumsum(speeds):
        u = x - offset
        grey = (
            128
            + 50 * np.sin(u / 5.0) * np.cos(y / 7.0)
            + 40 * np.sin((u + 2 * y) / 9.0)
            + 20 * np.cos(u / 3.1 - y / 4.3)
        )
        frames.append(np.repeat(grey[..., None], 3, axis=2))
    return np.stack(frames).clip(0, 255).astype(np.uint8)


def _booms(offset_s: float) -> np.ndarray:
    """Near-silence with a short decaying noise burst at each event time (+ offset)."""
    rng = np.random.default_rng(1)
    wave = rng.normal(0, 1e-4, FRAMES * RATE // FPS)
    n = int(0.08 * RATE)
    burst = rng.normal(0, 0.5, n) * np.exp(-np.arange(n) / (0.015 * RATE))
    for event in EVENTS:
        start = int((event / FPS + offset_s) * RATE)
        wave[start : start + n] += burst[: len(wave[start : start + n])]
    return wave.astype(np.float32)


def _as_batch(frames: np.ndarray) -> torch.Tensor:
    """uint8 "t h w 3" -> "1 t 3 h w" in [-1, 1]."""
    return torch.from_numpy(frames).permute(0, 3, 1, 2)[None].float() / 127.5 - 1


def test_peaks_are_found_at_the_event_times() -> None:
    np.testing.assert_allclose(video_peak_times(_jumping_frames(), FPS), np.array(EVENTS) / FPS)
    audio = audio_peak_times(_booms(0.0), RATE)
    assert len(audio) == len(EVENTS)
    np.testing.assert_allclose(audio, np.array(EVENTS) / FPS, atol=0.5 / FPS)


def test_av_align_is_one_when_aligned_and_low_when_the_sound_is_shifted() -> None:
    frames = _as_batch(_jumping_frames())
    metric = AVAlign()
    metric.update(frames, torch.from_numpy(_booms(0.0))[None], RATE, FPS)
    assert metric.compute().item() == pytest.approx(1.0)
    shifted = AVAlign()
    shifted.update(frames, torch.from_numpy(_booms(0.5))[None], RATE, FPS)
    assert shifted.compute().item() < 0.2
    combined = AVAlign()  # merged state: the mean over both videos
    combined.update(frames, torch.from_numpy(_booms(0.0))[None], RATE, FPS)
    combined.merge_state(shifted)
    assert combined.count.item() == 2
    assert combined.compute().item() == pytest.approx((1.0 + shifted.compute().item()) / 2)


def _reference_iou(audio_peaks, video_peaks, fps) -> float:
    """The 2025 reference's `calc_intersection_over_union`, loop for loop."""
    intersection_length = 0
    used_video_peaks = [False] * len(video_peaks)
    for audio_peak in audio_peaks:
        for j, video_peak in enumerate(video_peaks):
            if not used_video_peaks[j] and video_peak - 1 / fps < audio_peak < video_peak + 1 / fps:
                intersection_length += 1
                used_video_peaks[j] = True
                break
    return intersection_length / (len(audio_peaks) + len(video_peaks) - intersection_length)


def test_peak_iou_matches_the_2025_reference_loop() -> None:
    rng = np.random.default_rng(2)
    for _ in range(200):
        audio = np.sort(rng.uniform(0, 3, rng.integers(0, 8)))
        video = np.sort(rng.integers(1, 29, rng.integers(1, 8)) / 10)
        assert abs(peak_iou(audio, video, 10) - _reference_iou(audio, video, 10)) < 1e-9


@pytest.mark.parametrize(
    ("audio", "video", "fps", "expected"),
    [
        ([0.50, 0.51, 0.52], [0.5], 30, 1 / 3),  # one video peak matches one audio peak only
        ([0.5], [0.50, 0.51], 30, 1 / 2),
        ([0.5], [0.55], 10, 1.0),
        ([0.5], [0.6], 10, 0.0),  # strictly within 1 / fps
        ([0.1, 0.5, 0.9], [0.12, 0.95, 2.0], 10, 2 / 4),
        ([0.5], [], 10, 0.0),  # a video with no peaks
        ([], [0.5, 1.0], 10, 0.0),  # a sound with no onsets
        ([], [], 10, 0.0),  # neither: the reference divides by zero; we score 0
    ],
)
def test_peak_iou_hand_computed(audio, video, fps, expected) -> None:
    assert abs(peak_iou(np.array(audio), np.array(video), fps) - expected) < 1e-9


def test_video_peaks_are_strict_maxima_of_at_least_0_1(monkeypatch) -> None:
    trajectory = np.array([0.0, 0.05, 0.0, 0.3, 0.1, 0.1, 0.2, 0.0, 0.1, 0.0, 0.2, 0.2, 0.0])
    monkeypatch.setattr(av_align, "flow_trajectory", lambda frames: trajectory)
    frames = np.zeros((len(trajectory), 4, 4, 3), np.uint8)
    np.testing.assert_allclose(video_peak_times(frames, 10), [0.3, 0.6, 0.8])


def test_still_video_and_silent_sound_have_no_peaks() -> None:
    still = np.full((12, 32, 32, 3), 100, np.uint8)
    assert len(video_peak_times(still, FPS)) == 0
    assert len(audio_peak_times(np.zeros(RATE, np.float32), RATE)) == 0
    assert av_align_score(still, _booms(0.0), RATE, FPS) == 0.0
    assert av_align_score(_jumping_frames(), np.zeros(FRAMES * RATE // FPS), RATE, FPS) == 0.0


def test_av_align_bad_input() -> None:
    with pytest.raises(ValueError, match="waveforms 'b samples' for 1 videos"):
        AVAlign().update(torch.zeros(1, 4, 3, 8, 8), torch.zeros(2, 100), RATE, FPS)
    with pytest.raises(ValueError, match="at least 2 frames"):
        AVAlign().update(torch.zeros(1, 1, 3, 8, 8), torch.zeros(1, 100), RATE, FPS)


class _MeanColour(nn.Module):
    """Image "n 3 h w" -> "n 3" mean colour: a stand-in image encoder."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.mean(dim=(2, 3))


def test_clip_audio_visual_score_is_the_mean_cosine_per_frame() -> None:
    audio_encoder = nn.Sequential(nn.Flatten(), nn.Linear(4 * 5, 3))
    metric = CLIPAudioVisualScore(audio_encoder=audio_encoder, image_encoder=_MeanColour())
    frames = torch.rand(2, 3, 3, 8, 8) * 2 - 1
    mel = torch.rand(2, 3, 4, 5)
    metric.update(frames, mel)
    with torch.no_grad():
        audio = audio_encoder(mel.flatten(0, 1))
    expected = F.cosine_similarity(audio, frames.flatten(0, 1).mean(dim=(2, 3)), dim=-1).mean()
    assert metric.count.item() == 6
    assert metric.compute().item() == pytest.approx(expected.item(), rel=1e-6)


def test_clip_audio_visual_score_from_embeddings_and_merge() -> None:
    a, b = torch.randn(10, 8), torch.randn(10, 8)
    whole, first, second = (CLIPAudioVisualScore() for _ in range(3))
    whole.update(audio_embeddings=a, image_embeddings=b)
    first.update(audio_embeddings=a[:4], image_embeddings=b[:4])
    second.update(audio_embeddings=a[4:], image_embeddings=b[4:])
    first.merge_state(second)
    assert first.compute().item() == pytest.approx(whole.compute().item(), rel=1e-12)
    same = CLIPAudioVisualScore()
    same.update(audio_embeddings=a, image_embeddings=2 * a)
    assert same.compute().item() == pytest.approx(1.0)


def test_clip_audio_visual_score_bad_input() -> None:
    with pytest.raises(ValueError, match="built without audio_encoder/image_encoder"):
        CLIPAudioVisualScore().update(torch.zeros(1, 2, 3, 8, 8), torch.zeros(1, 2, 4, 5))
    metric = CLIPAudioVisualScore(audio_encoder=nn.Flatten(), image_encoder=_MeanColour())
    with pytest.raises(ValueError, match="same b and t"):
        metric.update(torch.zeros(1, 2, 3, 8, 8), torch.zeros(1, 3, 4, 5))
    with pytest.raises(ValueError, match="needs frames and mel, or audio_embeddings"):
        metric.update()
