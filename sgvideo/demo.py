"""`make demo`: the whole pipeline end to end on the embedded synthetic dataset, no downloads.

synthetic clips -> miniature CLIP -> StyleGAN2 prior -> stage 0 (audio-CLIP) -> stage 1
(inversion) -> stage 2 (trajectory) -> one video per held-out sound -> contact sheet ->
evaluation report. The CLIP, trained on the clips' frames and category captions, is the CLIP
of every later stage.

Every step writes its result under `--out` and is skipped when that result already exists, so a
rerun reuses what is done; an interrupted training stage resumes from its `last.ckpt`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from sgvideo.files import atomic_path

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "demo"
# The synthetic clips' frame rate; the demo configs cache frames, step stage 2 and the videos
# play at it, so that motion lands on the frames whose sound brought it.
FPS = 15.0
# The two categories of the animated strip: the flash on a boom, the glow flaring on a crackle.
ANIMATED_CATEGORIES = ("fire", "thunder")


class DemoPaths:
    """Where each of the demo's artefacts lives under `out`."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.synth = out / "synth"
        self.cache = out / "cache"
        self.checkpoints = out / "checkpoints"
        self.runs = out / "runs"
        self.videos = out / "videos"
        self.contact_sheet = out / "contact_sheet.png"
        self.animation = out / "animation.gif"
        self.report = out / "report.json"

    def checkpoint(self, stage: str) -> Path:
        return self.checkpoints / (f"{stage}.pt" if stage in EXPORTING_STAGES else f"{stage}.ckpt")


# Stages whose result is the file they export (`--model.export_path`), not a Lightning .ckpt.
EXPORTING_STAGES = ("clip", "prior")
# The stages in training order, with the model arguments that point each at the results of
# the stages before it.
STAGE_INPUTS: dict[str, dict[str, str]] = {
    "clip": {},
    "prior": {},
    "align": {"clip": "clip"},
    "inversion": {"clip": "clip", "generator_path": "prior", "audio_encoder_path": "align"},
    "trajectory": {
        "clip": "clip",
        "generator_path": "prior",
        "audio_encoder_path": "align",
        "inversion_path": "inversion",
    },
}


def _log(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def _run(command: list[str], threads: int = 1) -> None:
    _log("$ " + " ".join(command))
    # The demo's models are tiny: a stage that shares the machine with another is several times
    # faster with one thread than with threads spinning on each other's barriers; one that runs
    # alone gets every core, with threads that sleep rather than spin while they wait (a
    # quarter slower on an idle machine, half the time of spinning threads on a busy one).
    # A user's own settings win.
    env = {"OMP_NUM_THREADS": str(threads), **os.environ}
    if threads > 1:
        env = {"OMP_WAIT_POLICY": "PASSIVE", **env}
    subprocess.run(command, check=True, env=env)


def runs_alone(stage: str) -> bool:
    """Whether every other stage must finish before `stage` or wait for it (`train_stages`
    then runs it by itself)."""
    before = {stage: set(inputs.values()) for stage, inputs in STAGE_INPUTS.items()}

    def ancestors(name: str) -> set[str]:
        return set().union(*({source} | ancestors(source) for source in before[name]))

    return all(
        other == stage or other in ancestors(stage) or stage in ancestors(other)
        for other in STAGE_INPUTS
    )


def _sgvideo(*args: str) -> list[str]:
    return [sys.executable, "-m", "sgvideo.cli", *args]


def _data_options(paths: DemoPaths, image_size: int) -> list[str]:
    """The `--data.*` options every demo command shares: the clips, their cache and its frames."""
    return [
        "--data.root",
        str(paths.synth),
        "--data.cache_dir",
        str(paths.cache),
        "--data.image_size",
        str(image_size),
        "--data.fps",
        str(FPS),
    ]


def _last_checkpoint(run_dir: Path) -> Path | None:
    found = sorted(run_dir.rglob("last*.ckpt"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def train_stage(stage: str, paths: DemoPaths, image_size: int, max_steps: int | None) -> None:
    """Fit one stage with its demo config; copy its final checkpoint to `checkpoints/`."""
    target = paths.checkpoint(stage)
    if target.exists():
        _log(f"{stage}: reusing {target}")
        return
    run_dir = paths.runs / stage
    command = _sgvideo(
        stage,
        "fit",
        "--config",
        str(CONFIGS / "base.yaml"),
        "--config",
        str(CONFIGS / f"{stage}.yaml"),
        *_data_options(paths, image_size),
        "--trainer.default_root_dir",
        str(run_dir),
    )
    for argument, source in STAGE_INPUTS[stage].items():
        command += [f"--model.{argument}", str(paths.checkpoint(source))]
    if stage in EXPORTING_STAGES:
        command += ["--model.export_path", str(target)]
    if stage == "prior":
        command += ["--model.size", str(image_size)]
    if max_steps is not None:
        command += ["--trainer.max_steps", str(max_steps), "--trainer.max_epochs", "-1"]
    resume = _last_checkpoint(run_dir)
    if resume is not None:
        _log(f"{stage}: resuming from {resume}")
        command += ["--ckpt_path", str(resume)]
    start = time.perf_counter()
    _run(command, threads=(os.cpu_count() or 1) if runs_alone(stage) else 1)
    if stage not in EXPORTING_STAGES:
        last = _last_checkpoint(run_dir)
        if last is None:
            raise RuntimeError(f"{stage} finished without writing a checkpoint under {run_dir}")
        paths.checkpoints.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(last, target)
    if not target.exists():
        raise RuntimeError(f"{stage} finished without writing {target}")
    _log(f"{stage}: done in {time.perf_counter() - start:.0f} s -> {target}")


def train_stages(
    paths: DemoPaths, image_size: int, max_steps: int | None, parallel: int = 2
) -> None:
    """Train every stage, up to `parallel` at once: a stage starts when the stages it reads
    are done (the prior trains beside CLIP and stage 0), so a 2-core machine uses both cores."""
    with ThreadPoolExecutor(parallel) as pool:
        started: dict[str, Future] = {}
        for stage, inputs in STAGE_INPUTS.items():  # in training order: inputs come first
            needed = [started[source] for source in set(inputs.values())]
            started[stage] = pool.submit(_train_after, needed, stage, paths, image_size, max_steps)
        for future in started.values():
            future.result()


def _train_after(needed: list[Future], stage: str, *args) -> None:
    for future in needed:
        future.result()
    train_stage(stage, *args)


def demo_splits(paths: DemoPaths) -> dict[str, list]:
    """The synthetic clips by split, as the DataModule splits them by default."""
    from sgvideo.data.index import assign_splits, load_index

    return assign_splits(load_index(str(paths.synth)), val_fraction=0.1, test_fraction=0.1, seed=0)


def held_out_sounds(paths: DemoPaths) -> dict[str, Path]:
    """One test-split clip per category (the DataModule's default split): its sound drives
    that category's demo video."""
    splits = demo_splits(paths)
    chosen: dict[str, Path] = {}
    for split in ("test", "val", "train"):
        for clip in splits[split]:
            chosen.setdefault(clip.category, Path(clip.path))
    return dict(sorted(chosen.items()))


def generate_videos(paths: DemoPaths, sounds: dict[str, Path]) -> list[Path]:
    from sgvideo.generate import generate_video

    paths.videos.mkdir(parents=True, exist_ok=True)
    written = []
    for category, sound in sounds.items():
        video = paths.videos / f"{category}.mp4"
        if not video.exists():
            _log(f"generating {video} from the sound of {sound}")
            # from the sound's own latent, at stage 2's training frame rate (the clips' 15 fps)
            generate_video(sound, paths.checkpoint("trajectory"), video)
        written.append(video)
    return written


def write_contact_sheet(videos: list[Path], out: Path, columns: int = 6) -> Path:
    """A grid: one row per video, `columns` frames spread evenly across it."""
    from sgvideo.video_io import read_frames

    rows = []
    for video in videos:
        frames = np.asarray(read_frames(video))
        picks = np.linspace(0, len(frames) - 1, columns).round().astype(int)
        rows.append(np.concatenate([frames[i] for i in picks], axis=1))
    Image.fromarray(np.concatenate(rows, axis=0)).save(out)
    return out


def write_animation(videos: list[Path], out: Path, fps: float, scale: int = 4) -> Path:
    """The videos side by side as an animated GIF, each pixel shown `scale` x `scale`."""
    from sgvideo.video_io import read_frames

    clips = [np.asarray(read_frames(video)) for video in videos]
    length = min(len(frames) for frames in clips)
    row = np.concatenate([frames[:length] for frames in clips], axis=2)
    row = row.repeat(scale, axis=1).repeat(scale, axis=2)
    images = [Image.fromarray(frame) for frame in row]
    with atomic_path(out) as tmp:
        images[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=round(1000 / fps),
            loop=0,
        )
    return out


def evaluate(paths: DemoPaths, image_size: int, num_videos: int) -> None:
    """`sgvideo evaluate` of the stage-2 checkpoint on the held-out test sounds, with the
    ablation (random latents / stage 1 alone / full model), the real clips' values and the
    prior's coverage of the scenes."""
    _run(
        _sgvideo(
            "evaluate",
            "--checkpoint",
            str(paths.checkpoint("trajectory")),
            "--ablation",
            "true",
            *_data_options(paths, image_size),
            "--data.num_workers",
            "0",
            "--feature-net",
            "tiny",
            "--metrics",
            "accuracy,sync,drift,av_align,fid,fvd,clip_av,prior_coverage",
            "--score-real",
            "true",
            "--audio-encoder",
            str(paths.checkpoint("align")),
            "--clip",
            str(paths.checkpoint("clip")),
            "--num-videos",
            str(num_videos),
            "--resolution",
            str(image_size),
            "--out",
            str(paths.out),
        )
    )


def run_demo(
    out: Path,
    clips_per_category: int = 8,
    seconds: float = 3.0,
    image_size: int = 32,
    max_steps: int | None = None,
) -> dict[str, object]:
    """Run (or resume) every step; returns where the artefacts are."""
    from sgvideo.data.prepare import prepare_dataset
    from sgvideo.data.synth import write_synthetic_dataset

    paths = DemoPaths(Path(out))
    paths.out.mkdir(parents=True, exist_ok=True)
    if not paths.synth.exists():
        _log(f"writing the synthetic dataset to {paths.synth}")
        staging = paths.out / ".synth-partial"
        shutil.rmtree(staging, ignore_errors=True)
        write_synthetic_dataset(
            staging,
            clips_per_category=clips_per_category,
            seconds=seconds,
            size=image_size,
            fps=FPS,
        )
        staging.rename(paths.synth)
    # Decode the clips once, before stages that run side by side would each decode them.
    prepare_dataset(paths.synth, paths.cache, size=image_size, fps=FPS, progress=False)
    train_stages(paths, image_size, max_steps)
    sounds = held_out_sounds(paths)
    videos = generate_videos(paths, sounds)
    write_contact_sheet(videos, paths.contact_sheet)
    animated = [video for video in videos if video.stem in ANIMATED_CATEGORIES] or videos[:2]
    write_animation(animated, paths.animation, FPS)
    if not paths.report.exists():
        # two videos (two seeds) per held-out sound: the measures average over more videos
        evaluate(paths, image_size, num_videos=2 * len(demo_splits(paths)["test"]))
    summary = {
        "videos": [str(v) for v in videos],
        "contact_sheet": str(paths.contact_sheet),
        "animation": str(paths.animation),
        "report": str(paths.report),
        "checkpoints": {s: str(paths.checkpoint(s)) for s in STAGE_INPUTS},
    }
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument("--out", default="outputs/demo", help="where everything goes")
    parser.add_argument("--clips-per-category", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each synthetic clip")
    parser.add_argument("--image-size", type=int, default=32, help="frame size (the prior's size)")
    parser.add_argument(
        "--max-steps", type=int, default=None, help="cap every stage's steps (quick smoke runs)"
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    summary = run_demo(
        Path(args.out), args.clips_per_category, args.seconds, args.image_size, args.max_steps
    )
    _log(f"finished in {time.perf_counter() - start:.0f} s")
    print(json.dumps(summary, indent=2))
    print(
        "The report's FID/FVD come from tiny random feature networks: they show the pipeline "
        "works, not image quality. Real FID/FVD need the Inception and I3D weight files "
        "(docs/evaluate.md)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
