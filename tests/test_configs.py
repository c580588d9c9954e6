"""Every shipped config parses: `sgvideo <stage> fit --config <file> --print_config`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sgvideo.cli import STAGE_ALIASES, STAGES, main

CONFIGS = Path(__file__).parents[1] / "configs"
# configs/generator.yaml trains stage 2 under its older name
STAGE_CONFIGS = sorted(
    p for p in CONFIGS.rglob("*.yaml") if p.stem in STAGES or p.stem in STAGE_ALIASES
)


def test_every_config_is_checked() -> None:
    others = sorted(p.name for p in CONFIGS.rglob("*.yaml") if p not in STAGE_CONFIGS)
    assert others == ["evaluate.yaml"] and len(STAGE_CONFIGS) >= 2 * len(STAGES) - 1


@pytest.mark.parametrize("config", STAGE_CONFIGS, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_a_stage_config_parses(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main([config.stem, "fit", "--config", str(config), "--print_config"])
    assert stop.value.code in (0, None)
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert {"trainer", "model", "data"} <= set(resolved)


def test_the_evaluate_config_parses(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--config", str(CONFIGS / "evaluate.yaml"), "--print_config"]) == 0
    assert "metrics" in yaml.safe_load(capsys.readouterr().out)
