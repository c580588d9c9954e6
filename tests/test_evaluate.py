"""`sgvideo evaluate` end to end on the synthetic clips with tiny feature networks."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from sgvideo.audio import frame_count
from sgvideo.cli import main as sgvideo
from sgvideo.evaluate import parse_settings
from sgvideo.evaluation import evaluate
from sgvideo.inference.pipeline import SoundToVideo
from sgvideo.metrics.report import prior_coverage_text
from sgvideo.metrics.sources import read_video_file

from .fixtures.data import SYNTH_DATA_FLAGS


def _data_args(synth_root: Path, synth_cache: Path) -> list[str]:
    args = [f"--data.root={synth_root}", f"--data.cache_dir={synth_cache}"]
    args += SYNTH_DATA_FLAGS
    return args + ["--data.test_fraction=0.5", "--data.val_fraction=0.2"]


def test_evaluate_a_folder_against_the_test_split(
    synth_root, synth_cache, tmp_path, capsys
) -> None:
    out = tmp_path / "report"
    code = sgvideo(
        ["evaluate", "--config", "configs/evaluate.yaml", f"--generated={synth_root}"]
        + _data_args(synth_root, synth_cache)
        + ["--feature-net=tiny", "--metrics=fid,fvd,av_align", "--num-videos=4"]
        + ["--num-frames=8", "--stride=2", "--resolution=32", "--progress=false", f"--out={out}"]
    )
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert set(report["metrics"]) == {"fid", "fvd", "av_align"}
    assert all(math.isfinite(v) and v >= 0 for v in report["metrics"].values())
    assert 0 <= report["metrics"]["av_align"] <= 1
    protocol = report["protocol"]
    assert protocol["generated_videos"] == 4 and protocol["real_videos"] == 4
    assert (protocol["frames_per_clip"], protocol["frame_stride"]) == (8, 2)
    assert "prepare cache" in protocol["real_decoding"] and "PyAV" in protocol["generated_decoding"]
    assert "NOT FID" in protocol["feature_networks"]["fid"]
    assert report["comparable"] is False and "not comparable" in report["warning"]
    markdown = (out / "report.md").read_text()
    assert "| FVD (lower is better) |" in markdown and "| frame_stride | 2 |" in markdown
    assert "NOT FVD" in markdown and "**Warning:**" in markdown
    assert "fvd:" in capsys.readouterr().out


def _bright_when_loud(wave: torch.Tensor, sample_rate: int, fps: float, seed: int) -> torch.Tensor:
    """A stand-in generator: 16 px frames whose brightness follows the sound's loudness."""
    n = frame_count(len(wave), sample_rate, fps)
    hop = sample_rate / fps
    loud = torch.stack([wave[int(i * hop) : int((i + 1) * hop)].abs().mean() for i in range(n)])
    level = (loud / loud.max().clamp(min=1e-8)) * 2 - 1
    noise = torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed)) * 0.1
    return (level.view(n, 1, 1, 1) + noise).clamp(-1, 1)


def test_evaluate_a_generator_with_clip_av(synth_root, synth_cache, align_ckpt, tmp_path) -> None:
    """Checkpoint mode through an injected VideoGenerator, plus CLIP-AV from an align ckpt."""
    calls = []

    def generator(wave, sample_rate, fps, seed):
        calls.append((len(wave), sample_rate, fps, seed))
        return _bright_when_loud(wave, sample_rate, fps, seed)

    args = parse_settings(
        _data_args(synth_root, synth_cache)
        + ["--feature-net=tiny", "--metrics=fvd,clip_av", "--num-videos=3", "--num-frames=4"]
        + [f"--audio-encoder={align_ckpt}", "--resolution=16", "--progress=false"]
        + ["--score-real=true", "--seed=3"]
    )
    report = evaluate(args, generator=generator)
    assert [c[1:] for c in calls] == [(44100, 30.0, 3 + i) for i in range(3)]
    assert report["protocol"]["generated_videos"] == 3
    assert "no mp4 round trip" in report["protocol"]["generated_decoding"]
    assert set(report["metrics"]) == {"fvd", "clip_av", "real_clip_av"}
    for name in ("clip_av", "real_clip_av"):
        assert -1 <= report["metrics"][name] <= 1
    assert "sha256" in report["protocol"]["feature_networks"]["audio_encoder"]
    assert report["protocol"]["feature_networks"]["clip"] == "tiny"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--metrics=fid,psnr"], "subset of fid,fvd,clip_av,av_align,accuracy,sync,drift"),
        (["--metrics=accuracy", "--judge=nowhere.pt"], "nowhere.pt"),
        (["--ablation=true"], "--ablation needs --checkpoint"),
        (["--metrics=accuracy,prior_coverage"], "prior_coverage needs --checkpoint"),
        (["--feature-net=real"], "pt_inception-2015-12-05-6726825d.pth"),
        (["--metrics=fvd", "--feature-net=real"], "i3d_torchscript.pt"),
        (["--metrics=clip_av", "--feature-net=tiny"], "clip_av needs --audio-encoder"),
        (["--checkpoint=x.ckpt"], "exactly one of --generated or --checkpoint"),
        (["--real-dir=elsewhere"], "exactly one of --data or --real-dir"),
        (["--data.image_sise=3"], "image_sise"),
    ],
)
def test_evaluate_user_errors(
    synth_root, synth_cache, tmp_path, monkeypatch, capsys, extra, message
) -> None:
    monkeypatch.chdir(tmp_path)  # no pretrained/ folder here
    monkeypatch.delenv("SGVIDEO_FID_WEIGHTS", raising=False)
    monkeypatch.delenv("SGVIDEO_I3D_WEIGHTS", raising=False)
    argv = ["evaluate", f"--generated={synth_root}", *_data_args(synth_root, synth_cache), *extra]
    assert sgvideo(argv + ["--progress=false"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sgvideo evaluate: error:") and message in err
    assert not (tmp_path / "outputs").exists()


def _generated_folder(synth_root: Path, folder: Path) -> None:
    """A fire clip, a clip without sound, a clip of a category no judge knows, a 1 s clip."""
    from sgvideo.video_io import write_video

    fire = read_video_file(synth_root / "fire" / "fire_000.mp4", 44100)
    (folder / "fire").mkdir(parents=True)
    write_video(folder / "fire" / "take_1.mp4", fire.frames, fire.fps, fire.audio)
    write_video(folder / "rain_silent.mp4", fire.frames, fire.fps)
    write_video(folder / "snow.mp4", fire.frames, fire.fps, fire.audio)
    second = round(fire.fps)
    write_video(folder / "fire_short.mp4", fire.frames[:second], fire.fps, fire.audio[:44100])


def test_sound_following_measures_count_bad_videos(
    synth_root, synth_cache, tmp_path, capsys
) -> None:
    cache = tmp_path / "cache"  # the judge is cached inside it
    shutil.copytree(synth_cache, cache)
    generated = tmp_path / "generated"
    _generated_folder(synth_root, generated)
    out = tmp_path / "report"
    code = sgvideo(
        ["evaluate", f"--generated={generated}", *_data_args(synth_root, cache)]
        + ["--metrics=accuracy,sync,drift,fvd", "--feature-net=tiny", "--num-videos=4"]
        + ["--num-frames=4", "--fvd-fps=10", "--drift-seconds=2", "--resolution=32"]
        + ["--data.test_fraction=0.2", "--data.val_fraction=0.0", "--data.num_workers=0"]
        + ["--progress=false", f"--out={out}"]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads((out / "report.json").read_text())
    metrics, protocol = report["metrics"], report["protocol"]
    # fire/take_1.mp4 and fire_short.mp4 are fire frames labelled fire; rain_silent.mp4 shows
    # fire under a rain name: 2 of 3 known-category videos right, frame for frame
    synth = read_video_file(synth_root / "fire" / "fire_000.mp4", 44100)
    take, short = len(synth.frames), round(synth.fps)
    assert metrics["judge_accuracy"] == pytest.approx((take + short) / (2 * take + short))
    assert metrics["judge_accuracy_per_category"] == {"fire": 1.0, "rain": 0.0}
    assert metrics["drift_accuracy"] == {"first third": 0.5, "last third": 0.5}  # fire, rain
    assert -1 <= metrics["sync"] <= 1 and -1 <= metrics["real_sync"] <= 1
    skipped = protocol["skipped"]["generated"]
    assert skipped["without_sound"] == 1 and skipped["too_short_for_drift"] == 1
    assert skipped["unknown_category"] == 2  # snow.mp4, for accuracy and for drift
    assert "'snow' is not one the frame judge knows" in captured.err
    assert "rain_silent.mp4: has no sound" in captured.err
    assert "fire_short.mp4: lasts 1.00 s, under the drift split's 2 s" in captured.err
    # 4 frames at 10 fps from 30 fps videos: every third frame, 0.4 s per clip
    assert protocol["clip_span_seconds"] == {"real": [0.4], "generated": [0.4]}
    assert report["judge"]["test_accuracy"] >= 0.95
    markdown = (out / "report.md").read_text()
    assert markdown.index("## Does the video follow its sound?") < markdown.index("FVD")
    assert "| Category accuracy by the frame judge |" in markdown
    assert "0.2500 (1 / 4 categories)" in markdown
    assert markdown.index("FVD") < markdown.index("**Warning:**")


def test_ablation_table_from_a_checkpoint(
    synth_root, synth_cache, trajectory_ckpt, tmp_path, monkeypatch
) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(synth_cache, cache)
    args = parse_settings(
        [f"--checkpoint={trajectory_ckpt}", "--ablation=true", *_data_args(synth_root, cache)]
        + ["--metrics=accuracy,sync,drift,fid,prior_coverage", "--feature-net=tiny"]
        + ["--num-videos=2", "--num-frames=4", "--drift-seconds=3", "--resolution=32"]
        + ["--progress=false", "--data.num_workers=0"]
    )
    loads, load = [], SoundToVideo.from_checkpoint

    def counted_load(*args, **kwargs) -> SoundToVideo:
        loads.append(args)
        return load(*args, **kwargs)

    monkeypatch.setattr(SoundToVideo, "from_checkpoint", counted_load)
    report = evaluate(args)
    assert len(loads) == 1  # the videos, the ablation and the prior coverage share one model
    assert report["prior_coverage"]["samples"] == 500
    table = report["ablation"]
    assert list(table) == ["random latents, no sound", "stage 1 alone", "full model"]
    for row in table.values():
        assert 0 <= row["judge_accuracy"] <= 1 and row["fid"] >= 0
        assert set(row["drift_accuracy"]) == {"first third", "last third"}
    assert table["full model"]["judge_accuracy"] == report["metrics"]["judge_accuracy"]
    assert table["random latents, no sound"] != table["stage 1 alone"]


def test_prior_coverage_of_a_checkpoint(
    synth_root, synth_cache, trajectory_ckpt, tmp_path, capsys
) -> None:
    """prior_coverage alone: the checkpoint's prior judged once, and no video made."""
    cache = tmp_path / "cache"
    shutil.copytree(synth_cache, cache)
    out = tmp_path / "report"
    code = sgvideo(
        ["evaluate", f"--checkpoint={trajectory_ckpt}", *_data_args(synth_root, cache)]
        + ["--metrics=prior_coverage", "--num-videos=2", "--resolution=32"]
        + ["--data.num_workers=0", "--progress=false", f"--out={out}"]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads((out / "report.json").read_text())
    coverage = report["prior_coverage"]
    assert (coverage["samples"], coverage["threshold"]) == (500, 0.8)
    assert list(coverage["per_category"]) == report["judge"]["categories"]
    assert coverage["missing"] == [k for k, v in coverage["per_category"].items() if v == 0]
    assert 0 <= coverage["confident"] <= 1
    assert coverage["confident"] == pytest.approx(sum(coverage["per_category"].values()))
    assert report["metrics"] == {} and report["protocol"]["generated_videos"] == 0
    protocol = report["protocol"]["prior_coverage"]
    assert protocol.startswith("500 samples, z ~ N(0, I) from torch.Generator seed 0;")
    text = prior_coverage_text(coverage)
    assert text in captured.out
    markdown = (out / "report.md").read_text()
    assert f"## The prior\n\n{text}\n" in markdown
    assert "| prior_coverage | 500 samples" in markdown
