"""The evaluation report: report.json (everything) and report.md (tables for people)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sgvideo.files import atomic_path

# (title, key in report["metrics"]) of the measures that say whether a video follows its sound;
# the real clips' value is under "real_" + key.
FOLLOWING_ROWS = (
    ("Category accuracy by the frame judge", "judge_accuracy"),
    ("CLIP zero-shot category accuracy", "clip_zero_shot_accuracy"),
    ("Loudness-motion sync (Pearson r)", "sync"),
    ("Drift: judge accuracy over the first / last third of a long sound", "drift_accuracy"),
    ("AV-Align", "av_align"),
)
FOLLOWING_KEYS = {key for _, key in FOLLOWING_ROWS} | {
    "chance_sync",
    "judge_accuracy_per_category",
}

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
    "and i3d_torchscript.pt (see docs/evaluate.md)."
)


def cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {cell(v)}" for k, v in value.items())
    return str(value).replace("|", "\\|")


def _chance(report: dict[str, Any], key: str, values: dict[str, Any]) -> str:
    categories = report.get("judge", {}).get("categories")
    if key.endswith("accuracy") and categories:
        return f"{1 / len(categories):.4f} (1 / {len(categories)} categories)"
    if key == "sync" and "chance_sync" in values:
        return f"{values['chance_sync']:.4f} (another clip's sound)"
    return ""


def _following(report: dict[str, Any]) -> list[str]:
    """The table of sound-following measures: real clips, generated videos, chance."""
    values = report["metrics"]
    rows = [
        f"| {title} | {cell(values.get('real_' + key, ''))} | {cell(values[key])} | "
        f"{cell(_chance(report, key, values))} |"
        for title, key in FOLLOWING_ROWS
        if key in values
    ]
    if not rows:
        return []
    lines = ["## Does the video follow its sound?", ""]
    lines += [
        "| measure (higher is better) | real clips | generated | chance |",
        "|---|---|---|---|",
    ]
    lines += rows
    if "judge_accuracy_per_category" in values:
        lines += ["", f"Per category (generated): {cell(values['judge_accuracy_per_category'])}"]
    judge = report.get("judge")
    if judge:
        lines += [
            "",
            f"Frame judge: {judge['model']}, fitted on {judge['fitted_on']}; its accuracy on "
            f"real test frames: {cell(judge['test_accuracy'])} "
            f"({cell(judge.get('test_accuracy_per_category', {}))}).",
        ]
    return lines + [""]


def _ablation(report: dict[str, Any]) -> list[str]:
    table = report.get("ablation")
    if not table:
        return []
    keys = dict.fromkeys(k for row in table.values() for k in row)
    columns = [k for k in keys if k != "judge_accuracy_per_category"]
    lines = ["## Ablation", "", "| videos | " + " | ".join(columns) + " |"]
    lines += ["|---" * (len(columns) + 1) + "|"]
    for variant, row in table.items():
        lines.append(f"| {variant} | " + " | ".join(cell(row.get(k, "")) for k in columns) + " |")
    return lines + [""]


def prior_coverage_text(coverage: dict[str, Any]) -> str:
    """One sentence of `sgvideo.metrics.prior_coverage.prior_coverage`'s result."""
    shares = ", ".join(f"{name} {share:.1%}" for name, share in coverage["per_category"].items())
    return (
        f"{coverage['samples']} random samples of the prior: {coverage['confident']:.1%} "
        f"confidently one scene (judge probability >= {coverage['threshold']:g}); per scene: "
        f"{shares}; missing: {', '.join(coverage['missing']) or 'none'}."
    )


def _prior(report: dict[str, Any]) -> list[str]:
    coverage = report.get("prior_coverage")
    return ["## The prior", "", prior_coverage_text(coverage), ""] if coverage else []


def markdown(report: dict[str, Any]) -> str:
    """A human-readable report: whether the videos follow their sounds, the ablation, the
    prior's coverage of the scenes, the other metrics (with their warning), then every setting
    that changes them."""
    lines = ["# sgvideo evaluation", ""]
    lines += _following(report) + _ablation(report) + _prior(report)
    others = {
        k: v for k, v in report["metrics"].items() if k.removeprefix("real_") not in FOLLOWING_KEYS
    }
    if others:
        lines += ["## Picture and motion quality", ""]
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {METRIC_TITLES.get(k, k)} | {cell(v)} |" for k, v in others.items()]
        lines += [""]
    if report.get("warning"):
        lines += [f"> **Warning:** {report['warning']}", ""]
    if report.get("notes"):
        lines += ["## Videos not scored", ""] + [f"- {note}" for note in report["notes"]] + [""]
    lines += ["## Protocol (everything that changes the numbers)", ""]
    lines += ["| setting | value |", "|---|---|"]
    lines += [f"| {k} | {cell(v)} |" for k, v in report["protocol"].items()]
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
