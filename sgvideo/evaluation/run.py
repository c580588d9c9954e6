"""`evaluate`: one evaluation run, its report, and with --ablation the ablation table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sgvideo.evaluation.protocol import evaluation_report, skips
from sgvideo.evaluation.scoring import Evaluation
from sgvideo.evaluation.sets import checkpoint_generator, generated_set
from sgvideo.evaluation.settings import EvaluationSettings
from sgvideo.metrics.prior_coverage import prior_coverage, protocol
from sgvideo.metrics.sources import VideoGenerator

if TYPE_CHECKING:
    from sgvideo.inference.pipeline import SoundToVideo


def evaluate(
    settings: EvaluationSettings, generator: VideoGenerator | None = None
) -> dict[str, Any]:
    """Run the evaluation `settings` describe; returns the report.

    `generator` replaces the checkpoint's VideoGenerator (generated from the real sounds).
    With --ablation the report also holds `ablation`: the same measures for random latents,
    stage 1 alone and the full model (the main result, generated from the checkpoint); with
    prior_coverage, `prior_coverage`: how the frame judge labels the checkpoint's prior.
    """
    settings.check(from_generator=generator is not None)
    run = Evaluation(settings)
    # --checkpoint's model, loaded once for everything that needs it
    model = None
    if settings.ablation or "prior_coverage" in run.names:
        model = checkpoint_generator(settings.checkpoint, settings.device)
    generated = generated_set(settings, run.real, generator or model)
    values, counts = run.score(generated)
    values |= {f"real_{name}": value for name, value in run.real_values.items()}
    report = evaluation_report(run, generated, counts, values)
    if settings.ablation:
        report["ablation"] = _ablation(run, model, values, report)
    if "prior_coverage" in run.names:
        report["prior_coverage"] = _prior_coverage(run, model, report)
    return report


def _ablation(
    run: Evaluation, model: SoundToVideo, values: dict[str, Any], report: dict[str, Any]
) -> dict[str, Any]:
    """The measures of each ablation baseline of --checkpoint's `model`, then the full model's
    (`values`); the baselines' skip counts and notes go into `report`."""
    from sgvideo.metrics.ablation import FULL_MODEL, ablation_baselines

    settings = run.settings
    table = {}
    for variant, source in ablation_baselines(model).items():
        variant_set = generated_set(settings, run.real, source, name=variant)
        table[variant], variant_counts = run.score(variant_set)
        report["protocol"]["skipped"][f"ablation: {variant}"] = skips(variant_counts)
        report["notes"] += [f"{variant}, {note}" for note in variant_counts.get("notes", [])]
    table[FULL_MODEL] = {k: v for k, v in values.items() if not k.startswith("real_")}
    return table


def _prior_coverage(run: Evaluation, model: SoundToVideo, report: dict[str, Any]) -> dict[str, Any]:
    """`prior_coverage` of --checkpoint's StyleGAN2 prior (`model.generator`) by the run's frame
    judge (once a run: it hears no sound); its protocol goes into `report`."""
    settings = run.settings
    judge, generator = run.judge, model.generator
    coverage = prior_coverage(
        generator, judge, judge.categories, seed=settings.seed, batch_size=model.batch_size
    )
    report["protocol"]["prior_coverage"] = protocol(coverage, settings.seed, generator.size)
    return coverage
