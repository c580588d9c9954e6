"""The demo's stage schedule: inputs first, the prior beside CLIP and stage 0, threads per stage."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from sgvideo import demo


def test_stages_that_share_the_machine_and_those_that_run_alone() -> None:
    alone = {stage: demo.runs_alone(stage) for stage in demo.STAGE_INPUTS}
    assert alone == {
        "clip": False,
        "prior": False,
        "align": False,
        "inversion": True,
        "trajectory": True,
    }


def test_every_stage_starts_after_its_inputs_and_the_prior_overlaps_clip(monkeypatch) -> None:
    events: list[tuple[str, str]] = []
    lock = threading.Lock()

    def fake_train(stage: str, *args) -> None:
        with lock:
            events.append(("start", stage))
        time.sleep(0.05 if stage != "prior" else 0.2)
        with lock:
            events.append(("end", stage))

    monkeypatch.setattr(demo, "train_stage", fake_train)
    demo.train_stages(demo.DemoPaths(Path("unused")), 32, None)
    order = [stage for kind, stage in events if kind == "start"]
    assert sorted(order) == sorted(demo.STAGE_INPUTS)
    for stage, inputs in demo.STAGE_INPUTS.items():
        for source in set(inputs.values()):
            assert events.index(("end", source)) < events.index(("start", stage)), stage
    # the prior runs beside CLIP and stage 0: both start before the prior ends
    assert events.index(("start", "align")) < events.index(("end", "prior"))


def test_a_failed_stage_stops_the_demo(monkeypatch) -> None:
    def failing(stage: str, *args) -> None:
        if stage == "clip":
            raise RuntimeError("clip failed")

    monkeypatch.setattr(demo, "train_stage", failing)
    with pytest.raises(RuntimeError, match="clip failed"):
        demo.train_stages(demo.DemoPaths(Path("unused")), 32, None)
