"""`sgvideo evaluate`: does a generated video follow its sound (category accuracy by a frame
judge, loudness-motion sync, drift, AV-Align), and FID, FVD and the CLIP audio-visual score of
generated videos against real ones, written to report.json and report.md with every setting
that changes them. `--ablation` adds the table: random latents / stage 1 alone / full model;
`--metrics ...,prior_coverage` adds how many random images of the checkpoint's StyleGAN2 prior the
frame judge labels confidently, per scene.

Real videos: the prepared test split of a LandscapeDataModule (`--data`, the `data.init_args`
block of a stage config) or a folder of video files (`--real-dir`). Generated videos: a folder
of video files (`--generated`) or a stage-2 checkpoint (`--checkpoint`, one video per real
clip's sound). Defaults follow StyleGAN-V: 2048 videos of 16 consecutive frames each side,
real clips at a random offset, generated clips from frame 0.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from sgvideo.errors import USER_ERRORS, reports_user_errors
from sgvideo.evaluation import EvaluationSettings, evaluate
from sgvideo.metrics.report import cell, prior_coverage_text, write_report
from sgvideo.tool_cli import parse_function_args


def parse_settings(argv: Sequence[str] | None) -> EvaluationSettings | int:
    """The settings `argv` gives, or the exit code of `--help` / `--print_config`."""
    kwargs = parse_function_args(EvaluationSettings, argv, "sgvideo evaluate", __doc__)
    return kwargs if isinstance(kwargs, int) else EvaluationSettings(**kwargs)


@reports_user_errors("sgvideo evaluate", (*USER_ERRORS, ImportError))
def main(argv: list[str] | None = None) -> int:
    settings = parse_settings(argv)
    if isinstance(settings, int):
        return settings
    report = evaluate(settings)
    json_path, md_path = write_report(report, settings.out)
    for name, value in report["metrics"].items():
        print(f"{name}: {cell(value)}")
    if "prior_coverage" in report:
        print(prior_coverage_text(report["prior_coverage"]))
    for note in report["notes"]:
        print(f"note: {note}", file=sys.stderr)
    if report.get("warning"):
        print(f"warning: {report['warning']}")
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
