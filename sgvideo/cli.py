"""The `sgvideo` entry point: LightningCLI training stages and the command-line tools.

Training stages (`sgvideo <stage> fit|validate|test --config ...`) are LightningCLIs over a
LightningModule and the landscape DataModule. Tools parse their own arguments. Imports are
lazy so that `sgvideo --help` answers at once.
"""

from __future__ import annotations

import importlib
import sys

from sgvideo.errors import NotWeightsError, reports_user_errors

# stage -> (LightningModule, LightningDataModule, help)
STAGES: dict[str, tuple[str, str, str]] = {
    "clip": (
        "sgvideo.lit.clip_training:CLIPTraining",
        "sgvideo.data.datamodule:LandscapeDataModule",
        "train (or fine-tune) a CLIP on the dataset's frames and category captions",
    ),
    "prior": (
        "sgvideo.lit.prior:StyleGAN2Prior",
        "sgvideo.data.datamodule:LandscapeDataModule",
        "train the StyleGAN2 prior on the dataset's frames",
    ),
    "align": (
        "sgvideo.lit.align:AudioCLIPAlignment",
        "sgvideo.data.datamodule:LandscapeDataModule",
        "stage 0: align an audio encoder with CLIP",
    ),
    "inversion": (
        "sgvideo.lit.inversion:SoundInversion",
        "sgvideo.data.datamodule:LandscapeDataModule",
        "stage 1: train the sound inversion encoder",
    ),
    "trajectory": (
        "sgvideo.lit.trajectory:TrajectoryGAN",
        "sgvideo.data.datamodule:LandscapeDataModule",
        "stage 2: train the latent trajectory generator",
    ),
}
# older stage names that still work (`sgvideo generator fit` trains the trajectory)
STAGE_ALIASES: dict[str, str] = {"generator": "trajectory"}

# tool -> (function taking argv and returning an exit code, help)
TOOLS: dict[str, tuple[str, str]] = {
    "synth-data": ("sgvideo.data.synth:main", "write the synthetic audio-visual dataset"),
    "prepare": ("sgvideo.data.prepare:main", "decode a folder of clips into the training cache"),
    "generate": ("sgvideo.generate:main", "sound file -> mp4 with the sound"),
    "project": ("sgvideo.edit:project_main", "invert an image into W+"),
    "edit-image": ("sgvideo.edit:edit_image_main", "edit an image with a sound"),
    "edit-video": ("sgvideo.edit:edit_video_main", "edit a video with a sound"),
    "evaluate": ("sgvideo.evaluate:main", "does the video follow its sound; FID, FVD, AV-Align"),
    "judge": ("sgvideo.judge:main", "fit the frame judge on a dataset's real training frames"),
    "app": ("sgvideo.app:main", "a browser app: sound to video, edit an image, sound + text"),
}


def _resolve(spec: str):
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def _usage() -> str:
    lines = ["usage: sgvideo <command> [options]", "", "training stages (LightningCLI):"]
    lines += [f"  {name:<12} {help_}" for name, (_, _, help_) in STAGES.items()]
    lines += [f"  {old:<12} the same as `{new}`" for old, new in STAGE_ALIASES.items()]
    lines += ["", "tools:"]
    lines += [f"  {name:<12} {help_}" for name, (_, help_) in TOOLS.items()]
    lines += ["", "`sgvideo <command> --help` describes each command's options."]
    return "\n".join(lines)


# model argument <- data argument(s), linked when the model's __init__ takes the argument, so
# the settings a stage was trained with travel in its checkpoint's hyper-parameters (as does
# `mel`, the MelSettings, linked field by field).
DATA_LINKS: dict[str, tuple[tuple[str, ...], object]] = {
    "num_frames": (("num_frames",), None),
    "window_seconds": (("clip_seconds", "num_frames"), lambda seconds, frames: seconds / frames),
}


# The trainer part every stage shares; a config states only what differs (the demo configs
# checkpoint by steps instead). The logger is Lightning's default, TensorBoard (a dependency),
# writing under trainer.default_root_dir.
TRAINER_DEFAULTS = {
    "trainer.callbacks": [
        {
            "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
            "init_args": {
                "filename": "{epoch:03d}-{step:08d}",
                "save_last": True,
                "save_top_k": -1,
                "every_n_epochs": 1,
            },
        },
        {
            "class_path": "lightning.pytorch.callbacks.LearningRateMonitor",
            "init_args": {"logging_interval": "epoch"},
        },
    ],
}


def place_checkpoints_under_root(trainer) -> None:
    """Checkpoint callbacks without a `dirpath` write to `<default_root_dir>/checkpoints`.

    Lightning would otherwise pick a new `lightning_logs/version_N` folder per run, where
    `--ckpt_path last` cannot find the previous run's `last.ckpt`.
    """
    import os

    for callback in trainer.checkpoint_callbacks:
        if callback.dirpath is None:
            callback.dirpath = os.path.join(trainer.default_root_dir, "checkpoints")


def _make_cli_class(model_class: type):
    import inspect
    from dataclasses import fields

    from lightning.pytorch.cli import LightningCLI

    from sgvideo.audio import MelSettings

    accepted = set(inspect.signature(model_class.__init__).parameters)

    class StageCLI(LightningCLI):
        def add_arguments_to_parser(self, parser) -> None:
            parser.set_defaults(TRAINER_DEFAULTS)
            for target, (sources, compute) in DATA_LINKS.items():
                if target in accepted:
                    parser.link_arguments(
                        tuple(f"data.{s}" for s in sources) if compute else f"data.{sources[0]}",
                        f"model.{target}",
                        compute_fn=compute,
                    )
            if "mel" in accepted:
                for field in fields(MelSettings):
                    parser.link_arguments(f"data.mel.{field.name}", f"model.mel.{field.name}")
            if "categories" in accepted:
                parser.link_arguments("data.categories", "model.categories", apply_on="instantiate")

        def before_fit(self) -> None:
            place_checkpoints_under_root(self.trainer)

    return StageCLI


def run_stage(stage: str, argv: list[str]) -> None:
    """Run one training stage's LightningCLI with `argv` (e.g. `fit --config x.yaml`)."""
    model_spec, data_spec, _ = STAGES[stage]
    model_class = _resolve(model_spec)
    # LightningCLI reads sys.argv; set it rather than passing `args=`, which it warns about
    # whenever the process was started with other arguments (`python -m sgvideo.cli ...`).
    saved_argv = sys.argv
    sys.argv = [f"sgvideo {stage}", *argv]
    try:
        _make_cli_class(model_class)(
            model_class,
            _resolve(data_spec),
            save_config_kwargs={"overwrite": True},
            parser_kwargs={"prog": f"sgvideo {stage}"},
        )
    finally:
        sys.argv = saved_argv


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    command, rest = STAGE_ALIASES.get(argv[0], argv[0]), argv[1:]
    if command in STAGES:
        # A missing or wrong weight file is the user's to fix: its message, not a traceback.
        run = reports_user_errors(f"sgvideo {command}", (FileNotFoundError, NotWeightsError))
        return run(lambda argv: run_stage(command, argv) or 0)(rest)
    if command in TOOLS:
        return int(_resolve(TOOLS[command][0])(rest) or 0)
    print(f"sgvideo: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
