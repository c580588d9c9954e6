"""The `sgvideo` entry point: help, unknown commands, stage errors and checkpoint placement."""

from __future__ import annotations

from pathlib import Path

import pytest
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from sgvideo.cli import STAGE_ALIASES, STAGES, TOOLS, main, place_checkpoints_under_root


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in (*STAGES, *TOOLS):
        assert f"  {command} " in out


def test_unknown_command_is_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train"]) == 2
    assert "unknown command 'train'" in capsys.readouterr().err


def test_a_stage_with_a_missing_weight_file_names_it(
    synth_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no_prior.pt"
    code = main(
        [
            "inversion",
            "fit",
            "--config",
            str(Path(__file__).parents[1] / "configs" / "demo" / "inversion.yaml"),
            "--data.root",
            str(synth_root),
            "--data.cache_dir",
            str(tmp_path / "cache"),
            "--model.generator_path",
            str(missing),
            "--model.clip",
            "tiny",
            "--trainer.default_root_dir",
            str(tmp_path / "run"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert f"sgvideo inversion: error: StyleGAN2 generator checkpoint not found: {missing}" in err


def test_checkpoints_without_a_folder_go_under_the_root_dir(tmp_path: Path) -> None:
    given = ModelCheckpoint(dirpath=tmp_path / "given", monitor="a")
    unset = ModelCheckpoint(monitor="b")
    trainer = Trainer(
        default_root_dir=tmp_path / "root", callbacks=[given, unset], logger=False, max_steps=1
    )
    place_checkpoints_under_root(trainer)
    assert Path(unset.dirpath) == tmp_path / "root" / "checkpoints"
    assert Path(given.dirpath) == tmp_path / "given"


def test_stage_2_is_trajectory_and_generator_still_works(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert "trajectory" in STAGES and STAGE_ALIASES == {"generator": "trajectory"}
    config = str(Path(__file__).parents[1] / "configs" / "trajectory.yaml")
    resolved = []
    for name in ("trajectory", "generator"):
        with pytest.raises(SystemExit) as stop:
            main([name, "fit", "--config", config, "--print_config"])
        assert stop.value.code in (0, None)
        resolved.append(capsys.readouterr().out)
    assert resolved[0] == resolved[1] and "model:" in resolved[0]
    main(["--help"])
    assert "  generator    the same as `trajectory`" in capsys.readouterr().out
