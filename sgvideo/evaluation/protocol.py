"""The report of one evaluation: the values, and every setting that changes them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import torch

from sgvideo.evaluation.scoring import Evaluation
from sgvideo.evaluation.sets import VideoSet
from sgvideo.metrics.report import TINY_WARNING


def skips(counts: dict[str, Any]) -> dict[str, Any]:
    """The skip counts of one side's counts."""
    return {k: v for k, v in counts.items() if k not in ("videos", "clip_seconds", "notes")}


def evaluation_report(
    run: Evaluation, generated: VideoSet, counts: dict[str, Any], values: dict[str, Any]
) -> dict[str, Any]:
    """{"metrics", "protocol", "notes", "comparable"[, "judge", "warning"]} of `run` with the
    generated set's `counts` and `values`."""
    settings, real = run.settings, run.real
    weights = dict(run.networks)
    if run.av is not None:
        weights.update(run.av.weights)
    num_frames, fvd_fps = settings.num_frames, settings.fvd_fps
    drift_seconds = settings.drift_seconds
    step = f"stride {settings.stride}" + (f" at {fvd_fps:g} fps" if fvd_fps else "")
    protocol = {
        "metrics": ",".join(run.names),
        "feature_networks": weights,
        "real_videos": run.real_counts["videos"],
        "generated_videos": counts["videos"],
        "requested_videos_per_side": settings.num_videos,
        "frames_per_clip": num_frames,
        "frame_stride": settings.stride,
        "fvd_fps": fvd_fps,
        "clip_span_seconds": {
            "real": run.real_counts["clip_seconds"],
            "generated": counts["clip_seconds"],
        },
        "resolution": (
            f"{settings.resolution} px (centre square crop, bilinear antialiased resize)"
            if settings.resolution
            else "as decoded"
        ),
        "real_source": real.source,
        "real_decoding": real.decoding,
        "real_sampling": (
            f"random subset and one random {num_frames}-frame offset per clip ({step}, seed "
            f"{settings.seed}); clips shorter than the span skipped"
        ),
        "generated_source": generated.source,
        "generated_decoding": generated.decoding,
        "generated_sampling": f"first {num_frames} frames ({step}) of each",
        "fid_images": "every frame of every evaluated clip; covariance / (n - 1) (pytorch-fid)",
        "fvd_protocol": (
            "StyleGAN-V: uint8 frames, I3D rescale=True resize=True (224 px) "
            "return_features=True; covariance / n"
        ),
        "av_align_input": "whole videos and their sound (the reference's protocol)",
        "following_input": "whole videos; sync against each video's own sound, chance against "
        "the sound of the video scored before it",
        "drift": (
            f"generated videos of at least {drift_seconds:g} s"
            if settings.generated
            else f"one video per category, its test sounds joined to >= {drift_seconds:g} s"
        )
        + "; judge accuracy over the first and the last third",
        "skipped": {"generated": skips(counts), "real": skips(run.real_counts)},
        "device": settings.device,
        "processes": 1,
        "seed": settings.seed,
        "torch": torch.__version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    report: dict[str, Any] = {"metrics": values, "protocol": protocol}
    report["notes"] = run.real_counts.get("notes", []) + counts.get("notes", [])
    if run.judge is not None:
        report["judge"] = {"categories": run.judge.categories, **run.judge_info}
    report["comparable"] = settings.feature_net == "real"
    if settings.feature_net == "tiny":
        report["warning"] = TINY_WARNING
    return report
