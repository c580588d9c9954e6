"""Data loading: clip windows per second from the prepared cache vs decoding the mp4 each time.

A synthetic dataset (real h264 + AAC mp4 files) is written to a temporary folder and prepared.
Both paths build the same training item (a random 2 s window, 6 frames, their audio windows
and log-mel at the default settings) in one process, no DataLoader workers:
- cache: memory-mapped frames.npy / audio.npy of the entry (what `LandscapeDataModule` does);
- decode: `resampled_frames` on the mp4 (PyAV decode + resize) and `load_audio`, then the window.
Each path runs in a fresh process so that its peak RSS is its own.
Goal: loading from the cache is at least 10x faster. The log-mel (same cost on both paths) is
timed separately: the "item" rows include it.
"""

from __future__ import annotations

import multiprocessing
import resource
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

NUM_FRAMES, CLIP_SECONDS, SAMPLE_RATE, CACHE_FPS, SOURCE_FPS = 6, 2.0, 44100, 30.0, 30.0


def _peak_rss_mib() -> float:
    """This process's peak RSS. On Linux, getrusage's ru_maxrss of a spawned process starts at
    its parent's RSS (the kernel carries it across fork + exec), so VmHWM is read instead."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _measure(mode: str, root: str, cache: str, size: int, items: int) -> dict:
    """Run in a fresh process: load and full-item rates and this process's peak RSS."""
    import numpy as np
    import torch

    from sgvideo.audio import LogMel, load_audio
    from sgvideo.data.datamodule import LandscapeDataModule
    from sgvideo.data.dataset import ClipDataset, cut_window
    from sgvideo.data.decode import resampled_frames

    torch.set_num_threads(1)
    datamodule = LandscapeDataModule(
        root, cache, image_size=size, fps=CACHE_FPS, num_frames=NUM_FRAMES, num_workers=0
    )
    datamodule.setup()
    clips = [clip for split in datamodule.clips.values() for clip in split]
    mel = LogMel(SAMPLE_RATE)
    dataset = ClipDataset(clips, NUM_FRAMES, CLIP_SECONDS, mel, random_window=True)
    baseline = _peak_rss_mib()

    def arrays(clip):
        if mode == "cache":
            return clip.load_frames(), clip.load_audio()
        frames = np.stack(list(resampled_frames(clip.path, size, CACHE_FPS)))
        return frames, load_audio(clip.path, SAMPLE_RATE).numpy()

    load_s = mel_s = 0.0
    for i in range(-1, items):  # i = -1 warms up (imports, first file opens)
        clip = clips[i % len(clips)]
        start = time.perf_counter()
        frames, audio = arrays(clip)
        window = cut_window(
            frames,
            audio,
            clip.fps,
            SAMPLE_RATE,
            dataset.window_start(clip),
            CLIP_SECONDS,
            NUM_FRAMES,
        )
        middle = time.perf_counter()
        mel(window[1])
        if i >= 0:
            load_s, mel_s = load_s + middle - start, mel_s + time.perf_counter() - middle
    return {
        "load": items / load_s,
        "item": items / (load_s + mel_s),
        "peak_rss": _peak_rss_mib(),
        "baseline": baseline,
    }


def run(quick: bool, devices: Sequence[str] = ("cpu",)) -> list[dict]:
    if "cpu" not in devices:
        return []
    from sgvideo.data.prepare import prepare_dataset
    from sgvideo.data.synth import write_synthetic_dataset

    size, seconds, per_category = (256, 5.0, 1) if quick else (256, 10.0, 2)
    items = {"cache": 100 if quick else 1000, "decode": 5 if quick else 40}
    context = {
        "size": size,
        "clip_seconds_on_disk": seconds,
        "source_fps": SOURCE_FPS,
        "cache_fps": CACHE_FPS,
        "num_frames": NUM_FRAMES,
        "window_s": CLIP_SECONDS,
        "workers": 0,
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root, cache = Path(tmp) / "clips", Path(tmp) / "cache"
        write_synthetic_dataset(
            root, clips_per_category=per_category, seconds=seconds, size=size, fps=SOURCE_FPS
        )
        start = time.perf_counter()
        report = prepare_dataset(
            root, cache, size=size, fps=CACHE_FPS, sample_rate=SAMPLE_RATE, progress=False
        )
        elapsed = time.perf_counter() - start
        rows.append(
            {
                "name": "data/prepare (decode into cache, 1 process)",
                "value": len(report.decoded) / elapsed,
                "unit": "clips/s",
                **context,
            }
        )
        results = {}
        spawn = multiprocessing.get_context("spawn")
        for mode in ("cache", "decode"):
            with ProcessPoolExecutor(1, mp_context=spawn) as pool:
                job = pool.submit(_measure, mode, str(root), str(cache), size, items[mode])
                results[mode] = job.result()
    labels = {"cache": "from cache (mmap .npy)", "decode": "decoding the mp4"}
    for mode, label in labels.items():
        result = results[mode]
        rows += [
            {
                "name": f"data/load {label}",
                "value": result["load"],
                "unit": "clips/s",
                "what": "frames + audio of a window",
                "items": items[mode],
                **context,
            },
            {
                "name": f"data/item {label}",
                "value": result["item"],
                "unit": "clips/s",
                "what": "load + log-mel of the 6 windows (n_fft 2048, 128 mels)",
                "items": items[mode],
                **context,
            },
            {
                "name": f"data/peak RSS {label}",
                "value": result["peak_rss"],
                "unit": "MiB",
                "rss_before_loading_mib": result["baseline"],
                **context,
            },
        ]
    names = {"load": "data/cache speed-up, load (goal >= 10)", "item": "data/cache speed-up, item"}
    for what, name in names.items():
        speedup = results["cache"][what] / results["decode"][what]
        rows.append({"name": name, "value": speedup, "unit": "x", **context})
    return rows


if __name__ == "__main__":
    for row in run(quick=True):
        print(row)
