"""Every shipped config parses: `sgvideo <stage> fit --config <file> --print_config` (the demo's
stage configs after their shared configs/demo/base.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sgvideo.cli import STAGES, main

CONFIGS = Path(__file__).parents[1] / "configs"
STAGE_CONFIGS = sorted(p for p in CONFIGS.rglob("*.yaml") if p.stem in STAGES)
DEMO_BASE = CONFIGS / "demo" / "base.yaml"


def test_every_config_is_checked() -> None:
    others = sorted(p for p in CONFIGS.rglob("*.yaml") if p not in STAGE_CONFIGS)
    assert others == [DEMO_BASE, CONFIGS / "evaluate.yaml"]
    assert len(STAGE_CONFIGS) == 2 * len(STAGES)


@pytest.mark.parametrize("config", STAGE_CONFIGS, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_a_stage_config_parses(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--config", str(DEMO_BASE)] if config.parent == DEMO_BASE.parent else []
    with pytest.raises(SystemExit) as stop:
        main([config.stem, "fit", *base, "--config", str(config), "--print_config"])
    assert stop.value.code in (0, None)
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert {"trainer", "model", "data"} <= set(resolved)
    stated = yaml.safe_load(config.read_text())
    assert resolved["trainer"]["default_root_dir"] == stated["trainer"]["default_root_dir"]
    if base:  # the demo's stages share the base's data and trainer settings
        assert resolved["data"]["mel"]["n_mels"] == 32
        assert resolved["data"]["image_size"] == 32 and resolved["trainer"]["accelerator"] == "cpu"


def test_the_evaluate_config_parses(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--config", str(CONFIGS / "evaluate.yaml"), "--print_config"]) == 0
    assert "metrics" in yaml.safe_load(capsys.readouterr().out)
