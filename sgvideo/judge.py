"""`sgvideo judge fit`: fit the frame judge on the real frames of a dataset's training split.

The judge (`sgvideo.metrics.judge.FrameJudge`) is cached under `<cache_dir>/judges/`, in a
file named by a hash of everything it depends on (the prepared cache's settings, the training
and test clips, the judge's settings), so `sgvideo evaluate` fits it once and reuses it.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sgvideo.errors import reports_user_errors
from sgvideo.metrics.judge import DESCRIPTION, FrameJudge
from sgvideo.metrics.sources import datamodule_from_options, model_frames, read_cached_clip
from sgvideo.tool_cli import parse_function_args

JUDGE_VERSION = 1
FRAMES_PER_CLIP = 32


def clip_frames(
    clips: Sequence, frames_per_clip: int, image_size: int, known: list[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """`frames_per_clip` evenly spaced frames of each cached clip: frames "n 3 s s" in [-1, 1]
    and labels "n", the index of each clip's category in `known`."""
    frames, labels = [], []
    for clip in clips:
        video = read_cached_clip(clip)
        picks = np.unique(np.linspace(0, len(video.frames) - 1, frames_per_clip).round())
        frames.append(model_frames(video.frames[picks.astype(int)], image_size))
        labels += [known.index(clip.category)] * len(picks)
    if not frames:
        return torch.zeros(0, 3, image_size, image_size), torch.zeros(0, dtype=torch.long)
    return torch.cat(frames), torch.tensor(labels, dtype=torch.long)


def judge_path(data, frames_per_clip: int) -> Path:
    """Where the judge for this DataModule (prepared and split) and these settings is cached."""
    hp = data.hparams
    key = {
        "version": JUDGE_VERSION,
        "cache": str(data.settings.folder(hp.cache_dir).resolve()),
        "categories": data.categories,
        "train": [c.key for c in data.split_clips("train")],
        "test": [c.key for c in data.split_clips("test")],
        "frames_per_clip": frames_per_clip,
        "features": DESCRIPTION,
    }
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return Path(hp.cache_dir) / "judges" / f"judge-{digest}.pt"


def fit_judge(data, frames_per_clip: int = FRAMES_PER_CLIP) -> tuple[FrameJudge, dict[str, Any]]:
    """Fit on the training split's frames; measure on the test split's frames.

    The judge knows the categories that have training clips; test clips of other categories
    are left out of its test accuracy (and counted in `info`).
    """
    size = data.hparams.image_size
    train = data.split_clips("train")
    known = sorted({clip.category for clip in train})
    if len(known) < 2:
        raise ValueError(
            f"the frame judge needs training frames of at least 2 categories; the training split "
            f"has {len(train)} clips of {[data.categories[i] for i in known]}"
        )
    frames, labels = clip_frames(train, frames_per_clip, size, known)
    judge = FrameJudge.fit(frames, labels, [data.categories[i] for i in known], size)
    test = [clip for clip in data.split_clips("test") if clip.category in known]
    test_frames, test_labels = clip_frames(test, frames_per_clip, size, known)
    info: dict[str, Any] = {
        "model": DESCRIPTION,
        "fitted_on": f"{len(train)} training clips, {len(frames)} frames ({frames_per_clip} "
        "evenly spaced per clip)",
        "train_accuracy": _accuracy(judge, frames, labels),
        "test_clips": len(test),
        "test_clips_of_unknown_categories": len(data.split_clips("test")) - len(test),
        "test_frames": len(test_frames),
        "test_accuracy": _accuracy(judge, test_frames, test_labels),
        "test_accuracy_per_category": {
            name: _accuracy(judge, test_frames[test_labels == k], test_labels[test_labels == k])
            for k, name in enumerate(judge.categories)
            if (test_labels == k).any()
        },
    }
    return judge, info


def _accuracy(judge: FrameJudge, frames: torch.Tensor, labels: torch.Tensor) -> float | None:
    if len(frames) == 0:
        return None
    return float((judge.predict(frames) == labels).double().mean())


def load_or_fit_judge(
    data, refit: bool = False, frames_per_clip: int = FRAMES_PER_CLIP
) -> tuple[FrameJudge, dict[str, Any]]:
    """The cached judge of this DataModule, fitted (and cached) first when missing or `refit`.

    `info` says what it was fitted on, its accuracy on real test frames, and `path`.
    """
    path = judge_path(data, frames_per_clip)
    if path.exists() and not refit:
        judge, info = FrameJudge.load(path)
    else:
        judge, info = fit_judge(data, frames_per_clip)
        judge.save(path, info)
    return judge, {**info, "path": str(path)}


def fit(data: dict, refit: bool = False, frames_per_clip: int = FRAMES_PER_CLIP) -> None:
    """`sgvideo judge fit`: the judge of `data`'s training split, fitted (or read back from its
    cache) and its accuracy on real test frames printed.

    Args:
        data: LandscapeDataModule arguments (root, cache_dir, image_size, fps, test_fraction,
            seed, ...) as the stages trained with; e.g. --data.root DIR --data.cache_dir DIR
        refit: fit even when cached.
        frames_per_clip: evenly spaced frames per training clip.
    """
    if frames_per_clip < 1:
        raise ValueError("--frames-per-clip must be at least 1")
    judge, info = load_or_fit_judge(datamodule_from_options(data), refit, frames_per_clip)
    accuracy = info["test_accuracy"]
    shown = "no test frames" if accuracy is None else f"{accuracy:.4f}"
    print(f"frame judge ({', '.join(judge.categories)}): accuracy on real test frames {shown}")
    print(f"cached at {info['path']}")


@reports_user_errors("sgvideo judge")
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "fit":
        raise ValueError("usage: sgvideo judge fit --data.root DIR --data.cache_dir DIR [...]")
    kwargs = parse_function_args(fit, argv[1:], "sgvideo judge fit", __doc__)
    if isinstance(kwargs, int):  # --help, --print_config
        return kwargs
    fit(**kwargs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
