"""The evaluation report: report.json (everything) and report.md (tables for people)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sgvideo.files import atomic_path

METRIC_TITLES = {
    "fid": "FID (lower is better)",
    "fvd": "FVD (lower is better)",
    "clip_av": "CLIP audio-visual score (higher is better)",
    "av_align": "AV-Align (higher is better)",
    "real_clip_av": "CLIP audio-visual score of the real clips (reference)",
    "real_av_align": "AV-Align of the real videos (reference)",
}

TINY_WARNING = (
    "Computed with tiny random feature networks (--feature-net tiny): these FID/FVD numbers only "
    "compare runs made with the same tiny networks; they are NOT FID/FVD and not comparable with "
    "published values. Real FID/FVD need the weight files pt_inception-2015-12-05-6726825d.pth "
    "and i3d_torchscript.pt (see the README's Evaluate section)."
)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_cell(v)}" for k, v in value.items())
    return str(value).replace("|", "\\|")


def markdown(report: dict[str, Any]) -> str:
    """A human-readable report: the metrics, then every setting that changes them."""
    lines = ["# sgvideo evaluation", ""]
    if report.get("warning"):
        lines += [f"> **Warning:** {report['warning']}", ""]
    lines += ["| metric | value |", "|---|---|"]
    lines += [f"| {METRIC_TITLES.get(k, k)} | {_cell(v)} |" for k, v in report["metrics"].items()]
    lines += ["", "## Protocol (everything that changes the numbers)", ""]
    lines += ["| setting | value |", "|---|---|"]
    lines += [f"| {k} | {_cell(v)} |" for k, v in report["protocol"].items()]
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write `out_dir`/report.json and report.md (atomically; the folder is created)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = {
        out / "report.json": json.dumps(report, indent=2) + "\n",
        out / "report.md": markdown(report),
    }
    for path, text in texts.items():
        with atomic_path(path) as tmp:
            tmp.write_text(text)
    return out / "report.json", out / "report.md"
