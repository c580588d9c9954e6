"""Atomic writes: a killed writer leaves no temporary file for good.

SIGTERM unwinds a tool (`reports_user_errors`), so its temporary file is removed at once; after
SIGKILL the file stays until the next write of the same output, which removes temporary files
whose owner process is gone and keeps those of live writers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sgvideo.files import atomic_path, remove_stale_temp_files, saved_path
from sgvideo.video_io import read_frames, write_video

REPO = Path(__file__).resolve().parents[1]

# A tool that streams frames into an mp4 until it is killed.
WRITER = r"""
import sys, time
import numpy as np
from sgvideo.errors import reports_user_errors
from sgvideo.video_io import VideoWriter


@reports_user_errors("writer")
def main(argv):
    with VideoWriter(argv[0], 10, 16) as writer:
        while True:
            writer.write(np.zeros((1, 16, 16, 3), np.uint8))
            time.sleep(0.02)


sys.exit(main(sys.argv[1:]))
"""


def temp_files(target: Path, pid: int | str = "*") -> list[Path]:
    """The temporary files of `target` (of process `pid` only, if given)."""
    return sorted(target.parent.glob(f".{target.name}.*-{pid}-*"))


def start_writer(target: Path) -> tuple[subprocess.Popen, Path]:
    """A writer process and its temporary file, once it exists."""
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], cwd=REPO)
    deadline = time.monotonic() + 60
    while not temp_files(target, writer.pid):
        assert writer.poll() is None and time.monotonic() < deadline, "the writer did not start"
        time.sleep(0.05)
    (tmp,) = temp_files(target, writer.pid)
    return writer, tmp


def test_sigterm_removes_the_temporary_file(tmp_path) -> None:
    target = tmp_path / "out.mp4"
    writer, tmp = start_writer(target)
    time.sleep(0.3)  # some frames are written
    writer.send_signal(signal.SIGTERM)
    assert writer.wait(timeout=30) == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []


def test_the_next_write_removes_what_sigkill_left(tmp_path) -> None:
    target = tmp_path / "out.mp4"
    writer, tmp = start_writer(target)
    writer.kill()
    writer.wait(timeout=30)
    assert tmp.exists()  # the dead writer's half-written file
    live, live_tmp = start_writer(target)  # a concurrent writer's file stays
    try:
        write_video(target, np.zeros((2, 16, 16, 3), np.uint8), fps=10)
        assert not tmp.exists() and live_tmp.exists()
        assert len(read_frames(target)) == 2
    finally:
        live.kill()
        live.wait(timeout=30)


def dead_pid() -> int:
    """The process id of a process that has exited."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], text=True,
                          capture_output=True, check=True)  # fmt: skip
    return int(done.stdout)


def test_stale_files_are_only_those_of_dead_processes_for_this_output(tmp_path) -> None:
    target = tmp_path / "a.png"
    with atomic_path(target) as tmp:
        ours = tmp.name
    theirs = ours.replace(f"-{os.getpid()}-", f"-{dead_pid()}-")
    stale = tmp_path / theirs
    other_output = tmp_path / theirs.replace(".a.png.", ".b.png.")
    for path in (stale, tmp_path / ours, other_output, tmp_path / ".a.png.notes.png"):
        path.write_bytes(b"x")
    assert remove_stale_temp_files(target) == [stale]
    assert {p.name for p in tmp_path.iterdir()} == {
        "a.png",
        ours,
        other_output.name,
        ".a.png.notes.png",
    }


@pytest.mark.parametrize("folder", ["/proc", "/sys"])
def test_an_unwritable_folder_names_the_output_not_the_temporary_file(folder) -> None:
    target = Path(folder) / "x.mp4"
    with pytest.raises(ValueError, match=rf"^cannot write {target}: ") as info, atomic_path(target):
        pass
    assert "/." not in str(info.value)


def test_saved_paths_are_found_from_the_folders_above_their_checkpoint(
    tmp_path, monkeypatch
) -> None:
    project = tmp_path / "project"
    (project / "outputs" / "ck").mkdir(parents=True)
    prior = project / "outputs" / "ck" / "prior.pt"
    prior.write_bytes(b"x")
    checkpoint = project / "outputs" / "ck" / "trajectory.ckpt"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert saved_path("outputs/ck/prior.pt", checkpoint) == str(prior)  # saved from `project`
    assert saved_path(str(prior), tmp_path / "x.ckpt") == str(prior)  # absolute: as given
    assert saved_path("missing.pt", checkpoint) == "missing.pt"  # for the loader to name
    (elsewhere / "outputs" / "ck").mkdir(parents=True)
    (elsewhere / "outputs" / "ck" / "prior.pt").write_bytes(b"y")
    assert saved_path("outputs/ck/prior.pt", checkpoint) == "outputs/ck/prior.pt"  # cwd first
