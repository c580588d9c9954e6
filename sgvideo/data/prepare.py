"""`sgvideo prepare`: decode every clip once into the training cache (see `sgvideo.data.cache`).

Incremental: a clip is decoded only when its cache entry is missing, was made from a file of
another size or modification time, or was made with other settings (size, fps, sample rate;
each set of settings has its own folder). Clips that fail (corrupt, no audio, no video) are
skipped, listed with the reason in `<cache>/report.json`, and not retried until their file
changes. Entries appear atomically, so an interrupted run leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import shutil
import socket
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from sgvideo.audio import load_audio
from sgvideo.data.cache import (
    AUDIO_FILE,
    CACHE_VERSION,
    FRAMES_FILE,
    META_FILE,
    REPORT_FILE,
    TMP_PREFIX,
    CacheSettings,
    entry_dir,
    read_meta,
)
from sgvideo.data.decode import resampled_frames, write_frames_npy
from sgvideo.data.index import VIDEO_EXTENSIONS, Clip, load_index
from sgvideo.errors import reports_user_errors
from sgvideo.files import atomic_path
from sgvideo.tool_cli import parse_function_args


@dataclass(frozen=True)
class SkippedClip:
    """A clip that is not in the cache, and why."""

    key: str
    path: str
    reason: str
    source_size: int | None = None
    source_mtime_ns: int | None = None


@dataclass
class PrepareReport:
    """What one prepare run did; also written to `<cache>/report.json`."""

    cache_dir: str
    settings: CacheSettings
    decoded: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    skipped: list[SkippedClip] = field(default_factory=list)

    def summary(self) -> str:
        total = len(self.decoded) + len(self.reused) + len(self.skipped)
        lines = [
            f"prepare: {total} clips in {self.cache_dir}: {len(self.decoded)} decoded, "
            f"{len(self.reused)} already cached, {len(self.skipped)} skipped"
        ]
        lines += [f"  skipped {s.key}: {s.reason}" for s in self.skipped]
        if self.skipped:
            lines.append(f"  (listed in {Path(self.cache_dir) / REPORT_FILE})")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"version": CACHE_VERSION, **asdict(self)}


@dataclass(frozen=True)
class _Job:
    clip: Clip
    stamp: tuple[int, int]
    cache_dir: str
    settings: CacheSettings


def _stamp(path: Path) -> tuple[int, int] | None:
    """(size, mtime_ns) of a source file, None when it is missing."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def _tmp_name(name: str) -> str:
    """A temporary entry name unique to this process: `.tmp-<pid>-<name>-<host>`."""
    return f"{TMP_PREFIX}{os.getpid()}-{name}-{socket.gethostname()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_tmp(folder: Path) -> None:
    """Delete temporary entries left by dead processes of this host (an interrupted run).

    Temporary entries of live processes or of other hosts sharing the folder are left alone.
    """
    host = socket.gethostname()
    for tmp in folder.glob(f"{TMP_PREFIX}*"):
        pid, _, rest = tmp.name[len(TMP_PREFIX) :].partition("-")
        if rest.partition("-")[2] == host and pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def _publish(tmp: Path, final: Path) -> None:
    """Move a complete entry into place, replacing an outdated one."""
    if final.exists():
        old = final.with_name(_tmp_name(f"old{final.name}"))
        final.rename(old)
        shutil.rmtree(old)
    try:
        tmp.rename(final)
    except OSError:
        if read_meta(final) is None:  # not a concurrent run that finished the same clip first
            raise


def write_entry(clip: Clip, stamp: tuple[int, int], cache_dir: str, settings: CacheSettings) -> int:
    """Decode one clip into its cache entry; returns its number of frames."""
    final = entry_dir(cache_dir, settings, clip.key)
    tmp = final.with_name(_tmp_name(final.name))
    tmp.mkdir()
    try:
        audio = load_audio(clip.path, settings.sample_rate).numpy()
        np.save(tmp / AUDIO_FILE, audio)
        frames = resampled_frames(clip.path, settings.size, settings.fps)
        num_frames = write_frames_npy(frames, tmp / FRAMES_FILE)
        meta = {
            "version": CACHE_VERSION,
            "key": clip.key,
            "source": str(clip.path),
            "category": clip.category,
            "source_size": stamp[0],
            "source_mtime_ns": stamp[1],
            "size": settings.size,
            "fps": settings.fps,
            "sample_rate": settings.sample_rate,
            "num_frames": num_frames,
            "num_samples": int(audio.shape[0]),
            "duration": num_frames / settings.fps,
            "audio_duration": audio.shape[0] / settings.sample_rate,
        }
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1))
        _publish(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return num_frames


def _run_job(job: _Job) -> tuple[str, str | None]:
    """(clip key, None) when cached, (clip key, reason) when the clip cannot be used."""
    try:
        write_entry(job.clip, job.stamp, job.cache_dir, job.settings)
    except Exception as error:  # any bad file is reported, never allowed to stop the run
        return job.clip.key, f"{type(error).__name__}: {error}"
    return job.clip.key, None


def _init_worker() -> None:
    torch.set_num_threads(1)


def _run_jobs(jobs: list[_Job], workers: int, progress: bool) -> Iterator[tuple[str, str | None]]:
    """Run the jobs in this process, or in `workers` spawned processes; results as they end."""
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(
            tqdm(total=len(jobs), desc="prepare", unit="clip", disable=not (progress and jobs))
        )
        if workers > 1 and len(jobs) > 1:
            pool = ProcessPoolExecutor(
                min(workers, len(jobs)),
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
            )
            stack.callback(pool.shutdown, wait=True, cancel_futures=True)
            futures = [pool.submit(_run_job, job) for job in jobs]
            results = (future.result() for future in as_completed(futures))
        else:
            results = map(_run_job, jobs)
        try:
            for result in results:
                bar.update()
                yield result
        except BrokenProcessPool as error:
            raise RuntimeError(
                "a decoding process died (out of memory, or FFmpeg crashed on a file); the "
                "clips finished so far are kept: run again (with --workers 1 to find the clip)"
            ) from error


def _previous_failures(cache_dir: Path, settings: CacheSettings) -> dict[str, SkippedClip]:
    """Clips the last run with the same settings could not use (to avoid decoding them again)."""
    try:
        report = json.loads((cache_dir / REPORT_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    if report.get("version") != CACHE_VERSION or report.get("settings") != asdict(settings):
        return {}
    return {item["key"]: SkippedClip(**item) for item in report.get("skipped", [])}


def prepare_dataset(
    root: str | os.PathLike,
    cache_dir: str | os.PathLike,
    index_csv: str | os.PathLike | None = None,
    size: int = 256,
    fps: float = 30.0,
    sample_rate: int = 44100,
    workers: int = 1,
    progress: bool = True,
) -> PrepareReport:
    """Bring the cache up to date with the dataset's clips (see the module docstring).

    `workers` > 1 decodes in that many processes. Returns what was decoded, reused and
    skipped; the same goes to `<cache_dir>/report.json`.
    """
    settings = CacheSettings(size=size, fps=float(fps), sample_rate=sample_rate)
    cache = Path(cache_dir)
    clips = load_index(root, index_csv)
    if not clips:
        where = index_csv or root
        raise ValueError(
            f"no video clips found in {where} (expected <root>/<category>/<clip>"
            f"{{{','.join(VIDEO_EXTENSIONS)}}} or a CSV index)"
        )
    folder = settings.folder(cache)
    folder.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(folder)
    failures = _previous_failures(cache, settings)
    report = PrepareReport(cache_dir=str(cache), settings=settings)
    jobs: list[_Job] = []
    for clip in clips:
        stamp = _stamp(clip.path)
        meta = read_meta(entry_dir(cache, settings, clip.key))
        failure = failures.get(clip.key)
        if stamp is None:
            report.skipped.append(SkippedClip(clip.key, str(clip.path), "file not found"))
        elif meta is not None and (meta["source_size"], meta["source_mtime_ns"]) == stamp:
            report.reused.append(clip.key)
        elif failure is not None and (failure.source_size, failure.source_mtime_ns) == stamp:
            report.skipped.append(failure)
        else:
            jobs.append(_Job(clip, stamp, str(cache), settings))
    by_key = {job.clip.key: job for job in jobs}
    for key, reason in _run_jobs(jobs, workers, progress):
        if reason is None:
            report.decoded.append(key)
        else:
            job = by_key[key]
            report.skipped.append(SkippedClip(key, str(job.clip.path), reason, *job.stamp))
    report.decoded.sort()
    report.skipped.sort(key=lambda s: s.key)
    with atomic_path(cache / REPORT_FILE) as tmp:
        tmp.write_text(json.dumps(report.to_json(), indent=1))
    return report


DESCRIPTION = (
    "Decode every clip of a dataset once into a cache of frames (uint8 .npy, resized and "
    "centre-cropped) and audio (float32 .npy) that training memory-maps. Incremental: only new "
    "or changed clips are decoded. Unusable clips are skipped and listed in <cache>/report.json."
)


def prepare(
    cache: str | os.PathLike,
    root: str | os.PathLike | None = None,
    index_csv: str | os.PathLike | None = None,
    size: int = 256,
    fps: float = 30.0,
    sample_rate: int = 44100,
    workers: int = min(4, os.cpu_count() or 1),
    progress: bool = True,
) -> PrepareReport:
    """`sgvideo prepare`: `prepare_dataset` of --root or --index-csv, its summary printed.

    Args:
        cache: cache folder (created if missing).
        root: dataset folder: <root>/<category>/<clip>.mp4|mkv|...
        index_csv: CSV with columns path, category[, split] instead of scanning --root
            (relative paths are relative to the CSV's folder).
        size: frame size in pixels (square).
        fps: frame rate of the cached frames.
        sample_rate: audio sample rate (Hz).
        workers: decoding processes.
        progress: show a progress bar (--no-progress: none).
    """
    if not root and not index_csv:
        raise ValueError("give --root or --index-csv")
    report = prepare_dataset(
        root or ".", cache, index_csv, size, fps, sample_rate, workers, progress
    )
    print(report.summary())
    return report


@reports_user_errors("sgvideo prepare")
def main(argv: list[str] | None = None) -> int:
    kwargs = parse_function_args(prepare, argv, "sgvideo prepare", DESCRIPTION)
    if not isinstance(kwargs, int):
        prepare(**kwargs)
    return kwargs if isinstance(kwargs, int) else 0
