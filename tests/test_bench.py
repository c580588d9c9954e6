"""The benchmarks still run against the current APIs: small real measurements, CPU only.

Each bench module is only run by `make bench`, so an API change can break one silently; these
tests call the bench code itself at the smallest sizes that exercise it.
"""

from __future__ import annotations

import importlib
import json
import math
from types import SimpleNamespace

import pytest
import torch

import bench.run
from bench import bench_generate, bench_ops, bench_synthesis, bench_train
from sgvideo.models.stylegan2 import Generator

BENCH_MODULES = bench.run._modules([])


pytestmark = pytest.mark.usefixtures("one_thread")


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


def test_every_bench_module_is_found():
    assert BENCH_MODULES == [
        "bench_data",
        "bench_generate",
        "bench_metrics",
        "bench_ops",
        "bench_synthesis",
        "bench_train",
    ]


@pytest.mark.parametrize("name", BENCH_MODULES)
def test_no_device_asked_for_measures_nothing(name, monkeypatch):
    module = importlib.import_module(f"bench.{name}")

    def no_timing():
        raise AssertionError(f"{name} timed something although no device was asked for")

    monkeypatch.setattr(module, "time", SimpleNamespace(perf_counter=no_timing))
    assert module.run(quick=True, devices=()) == []


def test_devices(monkeypatch):
    assert bench.run._devices("cpu") == ["cpu"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench.run._devices("all") == ["cpu"]
    with pytest.raises(SystemExit, match="--device cuda: torch sees no CUDA device"):
        bench.run._devices("cuda")
    with pytest.raises(SystemExit, match="--device cuda: torch sees no CUDA device"):
        bench.run.main(["--device", "cuda"])  # before any module runs
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert bench.run._devices("all") == ["cpu", "cuda"]
    assert bench.run._devices("cuda") == ["cuda"]


def test_main_writes_the_machine_and_the_rows(tmp_path, capsys):
    out = tmp_path / "results.json"
    assert bench.run.main(["--only", "no-such-module", "--device", "cpu", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["results"] == []
    assert report["machine"]["torch"] == torch.__version__
    assert f"wrote {out}" in capsys.readouterr().out


def test_generate_pipeline_renders_frames_of_the_demo_size():
    pipe = bench_generate.pipeline(bench_generate.DEMO, "cpu")
    wave = bench_generate.sound(0.5)
    w0 = pipe.audio_latent(wave, bench_generate.FPS)
    frames = torch.cat(list(pipe.frames(wave, bench_generate.FPS, w0)))
    size = bench_generate.DEMO["size"]
    assert frames.shape == (15, 3, size, size)  # 0.5 s at 30 fps
    assert pipe.frame_count(wave.shape[-1], bench_generate.FPS) == 15
    # random weights: not bounded to [-1, 1], but of that scale, and moving from frame to frame
    assert frames.isfinite().all() and frames.abs().max() < 10
    assert frames.std() > 0.01 and (frames[1:] - frames[:-1]).abs().max() > 0


def test_generate_rows_to_frames_and_mp4():
    rows = bench_generate._rows("test", bench_generate.DEMO, "cpu", 0.5)
    assert [row["name"] for row in rows] == [
        "generate test frames",
        "generate test frames real-time factor",
        "generate test mp4",
        "generate test mp4 real-time factor",
    ]
    assert all(_positive(row["value"]) and row["frames"] == 15 for row in rows)


def test_generate_peak_memory_child_runs():
    """The child is a string of code (no linter sees it): run it on a short sound."""
    peak = bench_generate._peak_memory(0.5)
    assert 50 * 2**20 < peak < 8 * 2**30  # bytes: at least torch, at most a sane process


def test_train_step_on_demo_sizes():
    row = bench_train._measure(bench_train.DEMO, "cpu", 1)
    assert row["unit"] == "steps/s" and _positive(row["value"])
    assert (row["device"], row["batch"], row["resolution"]) == ("cpu", 4, 32)


def test_ops_cpu_rows():
    rows = bench_ops._cpu_rows(batch=1, reps=1)
    cases = len(bench_ops.UPFIRDN_CASES) + len(bench_ops.ACT_CASES)
    assert len(rows) == 2 * cases
    assert all(_positive(row["value"]) for row in rows)
    assert sorted({row["unit"] for row in rows}) == ["ms", "x"]


def test_synthesis_gflop_of_the_256_px_generator():
    nominal, executed = bench_synthesis.synthesis_gflop(Generator(256))
    assert nominal == pytest.approx(167.5, abs=0.1)  # the 167 GFLOP the docs quote
    assert executed == pytest.approx(90.2, abs=0.1)
