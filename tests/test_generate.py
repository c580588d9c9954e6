"""`sgvideo generate`: streaming latents, frames, the mp4, memory, determinism and bad input."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from sgvideo.audio import MelSettings, load_audio, segment_for_frames
from sgvideo.cli import main as cli_main
from sgvideo.generate import generate_video
from sgvideo.inference.latents import seed_latent
from sgvideo.inference.media import seeded
from sgvideo.inference.pipeline import SoundToVideo
from sgvideo.inference.sound import ExponentialSmoother, SoundInverter
from sgvideo.models.inversion_encoder import SoundInversionEncoder
from sgvideo.models.stylegan2 import Generator
from sgvideo.models.stylegan2_layers import NoiseInjection
from sgvideo.models.trajectory import TrajectoryGenerator
from sgvideo.pixels import frames_to_uint8
from sgvideo.video_io import read_frames

REPO = Path(__file__).resolve().parents[1]
RATE = 44100


def tiny_pipeline(
    noise_dim: int = 0,
    batch_size: int = 4,
    size: int = 32,
    channel_max: int = 32,
    step_seconds: float = 0.25,
    audio_features: bool = True,
    noise_drift: bool = False,
    scene_pan: bool = False,
) -> SoundToVideo:
    """A seeded random pipeline (tiny generator, encoder with non-zero heads, tiny GRUs; with
    `noise_drift`, noise inputs that draw part of the picture; `scene_pan` pans the scene)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        generator = Generator(
            size, style_dim=32, n_mlp=2, channel_multiplier=1, channel_max=channel_max
        )
        generator.w_avg.copy_(generator.mean_latent(256)[0])
        encoder = SoundInversionEncoder(
            generator.n_latent, 32, n_mels=32, channels=[8, 16, 32], blocks_per_stage=1
        )
        for head in encoder.heads:  # new heads output zero: make the sound matter
            torch.nn.init.normal_(head.linear.weight, std=0.1)
        trajectory = TrajectoryGenerator(
            generator.n_latent,
            32,
            hidden=16,
            num_layers=2,
            audio_dim=32 if audio_features else 0,
            noise_dim=noise_dim,
            noise_drift=noise_drift,
            scene_pan=scene_pan,
        )
        for head in trajectory.heads.values():
            torch.nn.init.normal_(head.weight, std=0.05)
        if noise_drift:
            for module in generator.modules():
                if isinstance(module, NoiseInjection):
                    module.weight.data.fill_(0.5)
    inverter = SoundInverter(encoder, generator.w_avg, MelSettings(RATE, 32, 1024, 512), 0.5)
    return SoundToVideo(
        generator, inverter, trajectory, step_seconds=step_seconds, batch_size=batch_size
    )


def noise_wave(seconds: float, seed: int = 0) -> torch.Tensor:
    """Noise with a changing envelope, so that consecutive windows differ."""
    n = round(seconds * RATE)
    g = torch.Generator().manual_seed(seed)
    envelope = 0.05 + 0.4 * torch.rand(max(1, n // 4410 + 1), generator=g).repeat_interleave(4410)
    return envelope[:n] * torch.randn(n, generator=g)


def write_wav(path: Path, seconds: float, rate: int = RATE, seed: int = 0) -> Path:
    wave = noise_wave(seconds * RATE / rate, seed)[: round(seconds * rate)]
    sf.write(path, wave.numpy(), rate)
    return path


def cat(chunks) -> torch.Tensor:
    return torch.cat(list(chunks))


def keyframe_latents(pipeline: SoundToVideo, *args) -> list[torch.Tensor]:
    return [w for w, _ in pipeline.keyframes(*args)]


# ---------------------------------------------------------------------------- latents


@pytest.mark.parametrize("audio_features", [True, False])
def test_streaming_equals_rollout_over_the_whole_sound(audio_features: bool) -> None:
    pipeline = tiny_pipeline(batch_size=3, audio_features=audio_features)
    wave, rate = noise_wave(1.0), 10.0
    w0 = pipeline.audio_latent(wave, rate)
    streamed = cat(keyframe_latents(pipeline, wave, rate, w0))
    w_a = pipeline.inverter.for_frames(wave, rate, 0, 10)
    segments = segment_for_frames(wave, RATE, 10, rate, 1.0 / rate)
    audio = pipeline.inverter.mel(segments).mean(dim=-1) if audio_features else None
    with torch.no_grad():
        reference = pipeline.trajectory.rollout(
            w0[None], w_a[None], None if audio is None else audio[None]
        )[0]
    assert streamed.shape == (10, 8, 32)
    torch.testing.assert_close(streamed, reference, atol=1e-5, rtol=1e-5)
    assert (streamed[1:] - streamed[:-1]).abs().max() > 1e-4  # the sound moves the latent


def test_louder_frames_move_the_trajectory_only_from_their_step_on() -> None:
    pipeline = tiny_pipeline(batch_size=4)
    rate = pipeline.step_rate
    wave = noise_wave(2.0)
    louder = wave.clone()
    step = 5
    louder[round(step / rate * RATE) : round((step + 1) / rate * RATE)] *= 3.0
    w0 = seed_latent(pipeline.generator, 1)
    quiet, loud = (cat(keyframe_latents(pipeline, x, rate, w0)) for x in (wave, louder))
    # the sound latent windows (0.5 s) reach one step back; the frame's own features none
    torch.testing.assert_close(quiet[: step - 1], loud[: step - 1])
    assert (loud[step] - quiet[step]).abs().max() > 1e-4


def test_frames_interpolate_the_trajectory_stepped_at_the_training_rate() -> None:
    pipeline = tiny_pipeline(batch_size=4)
    wave, rate = noise_wave(1.2), pipeline.step_rate
    w0 = seed_latent(pipeline.generator, 3)
    keys = cat(keyframe_latents(pipeline, wave, rate, w0))
    assert len(keys) == round(1.2 * rate)
    # at the training rate the frames are the keyframes themselves
    torch.testing.assert_close(cat(pipeline.raw_latents(wave, rate, w0)), keys)
    # at 3x the rate, frame 3k + 1 sits on keyframe k; the others lie on the segments between
    fast = cat(pipeline.raw_latents(wave, 3 * rate, w0))
    assert len(fast) == round(1.2 * 3 * rate)
    torch.testing.assert_close(fast[1::3][: len(keys)], keys)
    torch.testing.assert_close(fast[2], keys[0] + (keys[1] - keys[0]) / 3)
    torch.testing.assert_close(fast[0], keys[0])  # before the first keyframe: held


def test_smoothing_is_the_exponential_moving_average_across_chunks() -> None:
    pipeline = tiny_pipeline(batch_size=3)
    wave, fps, s = noise_wave(1.0), 10.0, 0.6
    w0 = pipeline.audio_latent(wave, fps)
    raw = cat(pipeline.raw_latents(wave, fps, w0))
    smoothed = cat(pipeline.latents(wave, fps, w0, smoothing=s))
    expected = [raw[0]]
    for w in raw[1:]:
        expected.append(s * expected[-1] + (1 - s) * w)
    torch.testing.assert_close(smoothed, torch.stack(expected))
    torch.testing.assert_close(cat(pipeline.latents(wave, fps, w0, smoothing=0.0)), raw)
    with pytest.raises(ValueError, match=r"smoothing must be in \[0, 1\)"):
        ExponentialSmoother(1.0)


def test_noise_is_seeded_per_frame_and_independent_of_chunking() -> None:
    wave, fps = noise_wave(1.0), 10.0
    runs = {}
    for batch_size, seed in ((2, 0), (7, 0), (7, 1)):
        pipeline = tiny_pipeline(noise_dim=3, batch_size=batch_size)
        w0 = pipeline.audio_latent(wave, fps)
        runs[batch_size, seed] = cat(pipeline.raw_latents(wave, fps, w0, seed=seed))
    torch.testing.assert_close(runs[2, 0], runs[7, 0], atol=1e-5, rtol=1e-5)
    assert (runs[7, 0] - runs[7, 1]).abs().max() > 1e-5


def test_frames_do_not_depend_on_the_chunk_size() -> None:
    wave, fps = noise_wave(0.7), 10.0
    frames = []
    for batch_size in (2, 5):
        pipeline = tiny_pipeline(batch_size=batch_size)
        frames.append(cat(pipeline.frames(wave, fps, pipeline.audio_latent(wave, fps))))
    assert frames[0].shape == (7, 3, 32, 32)
    torch.testing.assert_close(frames[0], frames[1], atol=1e-4, rtol=1e-4)


SCROLLS = {"noise_drift": 1, "scene_pan": 2}  # the scroll's place in `frame_steps`' triples


@pytest.mark.parametrize("scroll", SCROLLS)
def test_offsets_sum_each_steps_speed_across_chunks_and_interpolate_at_frames(scroll: str) -> None:
    wave = noise_wave(1.5)
    pipeline = tiny_pipeline(batch_size=2, **{scroll: True})

    def offsets(wave: torch.Tensor, fps: float) -> list[torch.Tensor]:
        w0 = pipeline.audio_latent(wave, fps)
        return [step[SCROLLS[scroll]] for step in pipeline.frame_steps(wave, fps, w0)]

    rate = pipeline.step_rate
    steps = pipeline.frame_count(wave.shape[-1], rate)
    features = pipeline.frame_features(wave, rate, 0, steps)
    with torch.no_grad():
        expected = getattr(pipeline.trajectory, scroll).offsets(features[None])[0]
    torch.testing.assert_close(cat(offsets(wave, rate)), expected)
    fast = cat(offsets(wave, 3 * rate))
    torch.testing.assert_close(fast[1::3][:steps], expected)
    torch.testing.assert_close(fast[2], expected[0] + (expected[1] - expected[0]) / 3)
    louder = cat(offsets(3 * wave, rate))
    assert (louder[1:] - louder[:-1] > expected[1:] - expected[:-1]).all()  # louder: faster


def test_latents_and_both_scrolls_read_the_sound_once_and_each_scroll_has_its_offsets() -> None:
    wave = noise_wave(1.5)
    pipeline = tiny_pipeline(batch_size=2, noise_drift=True, scene_pan=True)
    rate = pipeline.step_rate
    features = pipeline.frame_features(wave, rate, 0, pipeline.frame_count(wave.shape[-1], rate))
    calls = []
    original = pipeline.frame_features
    pipeline.frame_features = lambda *args: calls.append(args) or original(*args)
    steps = list(pipeline.frame_steps(wave, rate, pipeline.audio_latent(wave, rate)))
    assert len(calls) == len(steps)  # one read of each chunk's features for all three
    with torch.no_grad():
        for column, scroll in enumerate(
            (pipeline.trajectory.noise_drift, pipeline.trajectory.scene_pan), start=1
        ):
            expected = scroll.offsets(features[None])[0]
            torch.testing.assert_close(torch.cat([step[column] for step in steps]), expected)


@pytest.mark.parametrize("scroll", SCROLLS)
def test_scrolled_frames_do_not_depend_on_the_chunk_size_and_move(scroll: str) -> None:
    wave, fps = noise_wave(0.7), 10.0
    frames = []
    for batch_size in (2, 5):
        pipeline = tiny_pipeline(batch_size=batch_size, **{scroll: True})
        frames.append(cat(pipeline.frames(wave, fps, pipeline.audio_latent(wave, fps))))
    torch.testing.assert_close(frames[0], frames[1], atol=1e-4, rtol=1e-4)
    w0 = pipeline.audio_latent(wave, fps)
    with torch.no_grad():
        still = torch.cat(
            [pipeline.generator.synthesis(w) for w in pipeline.latents(wave, fps, w0)]
        )
    torch.testing.assert_close(frames[1][0], still[0])  # the first frame is not moved
    assert (frames[1] - still)[1:].abs().mean() > 1e-3
    plain = tiny_pipeline()
    steps = plain.frame_steps(wave, fps, plain.audio_latent(wave, fps))
    assert all(noise is None and pan is None for _, noise, pan in steps)


def test_mismatched_parts_are_refused() -> None:
    pipeline = tiny_pipeline()
    other = TrajectoryGenerator(10, 32, hidden=8, num_layers=1)
    with pytest.raises(ValueError, match="trajectory net works on W\\+ latents of 10 x 32"):
        SoundToVideo(pipeline.generator, pipeline.inverter, other)


# ---------------------------------------------------------------------------- memory


MEMORY_CHILD = """
import resource, sys, torch
torch.set_num_threads(1)
from tests.test_generate import noise_wave, tiny_pipeline
from sgvideo.generate import render_video
pipeline = tiny_pipeline(size=128, channel_max=8, batch_size=16)
peaks = []
for seconds in (5, 45):
    wave = noise_wave(seconds)
    render_video(pipeline, wave, sys.argv[1], 10.0, pipeline.audio_latent(wave, 10.0),
                 progress=False)
    del wave
    peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
print(*peaks)
"""


def test_peak_memory_does_not_grow_with_the_length_of_the_sound(tmp_path) -> None:
    """45 s vs 5 s at 10 fps, 128 px: keeping the frames would add ~80 MB, cutting every window
    at once ~35 MB; what may grow is the waveform (held twice: the model's and the muxer's)."""
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, str(tmp_path / "out.mp4")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    short, long = map(int, result.stdout.split())
    extra_audio = 40 * RATE * 4
    assert long - short < 3 * extra_audio + 10 * 2**20, (short, long)
    assert len(read_frames(tmp_path / "out.mp4")) == 450


# ---------------------------------------------------------------------------- the mp4


def probe_streams(path: Path) -> dict:
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        return {
            "video_seconds": float(video.duration * video.time_base),
            "audio_seconds": float(audio.duration * audio.time_base),
            "audio_rate": audio.codec_context.sample_rate,
            "size": (video.codec_context.height, video.codec_context.width),
        }


def test_generate_writes_mp4_png_and_gif_with_the_sound(trajectory_ckpt, tmp_path) -> None:
    seconds = 1.27
    audio = write_wav(tmp_path / "in.wav", seconds, rate=22050)
    out, gif = tmp_path / "out.mp4", tmp_path / "out.gif"
    argv = ["generate", "--audio", str(audio), "--checkpoint", str(trajectory_ckpt)]
    argv += ["--out", str(out), "--fps", "10", "--batch-size", "4", "--gif", str(gif)]
    argv += ["--frames-dir", str(tmp_path / "frames"), "--no-progress"]
    assert cli_main(argv) == 0
    frames = read_frames(out)
    assert frames.shape == (13, 32, 32, 3)  # round(1.27 s x 10 fps)
    info = probe_streams(out)
    assert info["video_seconds"] == pytest.approx(1.3, abs=1e-6)
    assert info["audio_seconds"] == pytest.approx(seconds, abs=1024 / info["audio_rate"] + 1e-3)
    decoded = load_audio(out, 22050)
    source = load_audio(audio, 22050)
    assert 0 <= len(decoded) - len(source) < 1024 + 64
    pngs = sorted((tmp_path / "frames").glob("*.png"))
    assert [p.name for p in pngs[:2]] == ["frame_000000.png", "frame_000001.png"]
    assert len(pngs) == 13
    pipeline = SoundToVideo.from_checkpoint(trajectory_ckpt, batch_size=5)
    wave = load_audio(audio, pipeline.sample_rate)
    with seeded(0):
        chunks = pipeline.frames(wave, 10.0, pipeline.audio_latent(wave, 10.0))
        expected = frames_to_uint8(cat(chunks))
    written = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in pngs])
    # rendered in batches of 4 and of 5: oneDNN may round differently, within one level
    assert np.abs(written.astype(int) - expected).max() <= 1
    # the mp4 holds the same frames up to h264 (yuv420p) loss
    assert np.abs(frames.astype(int) - expected).mean() < 20
    with Image.open(gif) as animation:
        assert animation.n_frames == 13


def test_generation_is_deterministic_for_a_seed(trajectory_ckpt, tmp_path) -> None:
    audio = write_wav(tmp_path / "in.wav", 0.4)
    outs = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        outs.append(
            generate_video(
                audio, trajectory_ckpt, tmp_path / f"{name}.mp4", fps=10, seed=seed, progress=False
            )
        )
    a, b, c = (read_frames(p) for p in outs)
    assert np.array_equal(a, b)
    assert outs[0].read_bytes() == outs[1].read_bytes()
    assert not np.array_equal(a, c)


def test_audio_shorter_than_a_window_still_gives_one_frame(trajectory_ckpt, tmp_path) -> None:
    audio = write_wav(tmp_path / "click.wav", 0.01)
    out = generate_video(audio, trajectory_ckpt, tmp_path / "out.mp4", fps=30, progress=False)
    assert read_frames(out).shape[0] == 1  # round(0.3) would be 0
    assert probe_streams(out)["audio_seconds"] > 0


def test_image_start_projects_the_image(trajectory_ckpt, tmp_path) -> None:
    pipeline = SoundToVideo.from_checkpoint(trajectory_ckpt)
    target = seed_latent(pipeline.generator, 1)
    with torch.no_grad():
        picture = pipeline.generator.synthesis(target[None])[0]
    path = tmp_path / "start.png"
    pixels = ((picture.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    Image.fromarray(pixels).save(path)
    audio = write_wav(tmp_path / "in.wav", 0.3)
    out = generate_video(
        audio, trajectory_ckpt, tmp_path / "out.mp4", fps=10, image=path, project_steps=10,
        smoothing=0.0, progress=False,
    )  # fmt: skip
    first = read_frames(out)[0].astype(float)
    from_sound = generate_video(
        audio, trajectory_ckpt, tmp_path / "sound.mp4", fps=10, smoothing=0.0, progress=False
    )
    sound_first = read_frames(from_sound)[0].astype(float)
    # the video starts nearer the image than the same sound's video from its own latent
    assert np.abs(first - pixels).mean() < np.abs(sound_first - pixels).mean()


def test_relative_saved_paths_are_found_from_another_directory(
    trajectory_ckpt, tmp_path, monkeypatch
) -> None:
    """A run in `project` saved its frozen nets' paths relative to it, as the demo does."""
    checkpoint = torch.load(trajectory_ckpt, map_location="cpu", weights_only=False)
    folder = tmp_path / "project" / "outputs" / "ck"
    folder.mkdir(parents=True)
    for key, name in (("generator_path", "prior.pt"), ("inversion_path", "inversion.ckpt")):
        shutil.copyfile(checkpoint["hyper_parameters"][key], folder / name)
        checkpoint["hyper_parameters"][key] = f"outputs/ck/{name}"
    torch.save(checkpoint, folder / "trajectory.ckpt")
    wave = noise_wave(0.5)
    expected = SoundToVideo.from_checkpoint(trajectory_ckpt)(wave, RATE, 10.0, 1)
    monkeypatch.chdir(tmp_path)
    moved = SoundToVideo.from_checkpoint(folder / "trajectory.ckpt")
    torch.testing.assert_close(moved(wave, RATE, 10.0, 1), expected)
    (folder / "prior.pt").unlink()  # found nowhere: the error names the saved path
    with pytest.raises(FileNotFoundError, match="generator checkpoint not found: outputs/ck/prior"):
        SoundToVideo.from_checkpoint(folder / "trajectory.ckpt")


def test_evaluate_interface(trajectory_ckpt) -> None:
    generate = SoundToVideo.from_checkpoint(trajectory_ckpt)
    wave = noise_wave(0.9)[::2].contiguous()  # 22.05 kHz
    frames = generate(wave, 22050, 10.0, 7)
    assert frames.shape == (9, 3, 32, 32) and frames.dtype == torch.float32
    assert torch.isfinite(frames).all() and frames.std() > 0.05
    torch.testing.assert_close(generate(wave, 22050, 10.0, 7), frames, atol=0, rtol=0)


# ---------------------------------------------------------------------------- bad input


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    code = cli_main(["generate", *argv, "--no-progress"])
    return code, capsys.readouterr().err


def assert_nothing_written(folder: Path, keep: set[str]) -> None:
    assert {p.name for p in folder.iterdir()} == keep


def test_unreadable_audio_is_a_clear_error(trajectory_ckpt, tmp_path, capsys) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00not really a wave file" * 10)
    code, err = run_cli(
        [
            "--audio",
            str(bad),
            "--checkpoint",
            str(trajectory_ckpt),
            "--out",
            str(tmp_path / "o.mp4"),
        ],
        capsys,
    )
    assert code == 2
    assert err.startswith("sgvideo generate: error:") and "cannot read audio" in err
    assert "Traceback" not in err
    assert_nothing_written(tmp_path, {"bad.wav"})


def test_checkpoint_of_another_stage_is_refused(inversion_ckpt, tmp_path, capsys) -> None:
    audio = write_wav(tmp_path / "in.wav", 0.3)
    code, err = run_cli(
        [
            "--audio",
            str(audio),
            "--checkpoint",
            str(inversion_ckpt),
            "--out",
            str(tmp_path / "o.mp4"),
        ],
        capsys,
    )
    assert code == 2
    assert "is a checkpoint of stage 'inversion', expected a 'trajectory' checkpoint" in err
    assert_nothing_written(tmp_path, {"in.wav"})


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--out", "{tmp}/missing/o.mp4"], "output folder does not exist"),
        (["--out", "{tmp}/o.avi"], "must end in one of .mp4"),
        (
            ["--out", "{tmp}/o.mp4", "--checkpoint", "{tmp}/none.ckpt"],
            "trajectory checkpoint not found",
        ),
        (["--out", "{tmp}/o.mp4", "--smoothing", "1.5"], "smoothing must be in [0, 1)"),
        (["--out", "{tmp}/o.mp4", "--category", "fire"], "no start latent for category 'fire'"),
    ],
)
def test_bad_arguments_are_clear_errors(trajectory_ckpt, tmp_path, capsys, extra, message) -> None:
    audio = write_wav(tmp_path / "in.wav", 0.3)
    argv = ["--audio", str(audio), "--checkpoint", str(trajectory_ckpt)]
    argv += [arg.format(tmp=tmp_path) for arg in extra]
    code, err = run_cli(argv, capsys)
    assert code == 2
    assert err.startswith("sgvideo generate: error:") and message in err
    assert_nothing_written(tmp_path, {"in.wav"})


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_cuda_without_a_gpu_is_a_clear_error(trajectory_ckpt, tmp_path, capsys) -> None:
    audio = write_wav(tmp_path / "in.wav", 0.3)
    argv = ["--audio", str(audio), "--checkpoint", str(trajectory_ckpt)]
    code, err = run_cli([*argv, "--out", str(tmp_path / "o.mp4"), "--device", "cuda"], capsys)
    assert code == 2 and "CUDA is not available" in err
