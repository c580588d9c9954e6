"""File helpers shared by every stage: clear errors for missing weights and unusable outputs,
atomic writes that leave nothing behind, checkpoint reading."""

from __future__ import annotations

import contextlib
import glob
import os
import re
import socket
import tempfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from sgvideo.errors import describe


def require_file(path: str | os.PathLike, what: str, hint: str = "") -> Path:
    """Return `path` as a Path, or raise FileNotFoundError naming the file and how to get it.

    Nothing in sgvideo ever downloads weights: every pretrained file is a local path.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        msg = f"{what} not found: {p}"
        if hint:
            msg += f". {hint}"
        raise FileNotFoundError(msg)
    return p


def saved_path(stored: str | os.PathLike, checkpoint: str | os.PathLike) -> str:
    """A file path saved in `checkpoint` (a frozen net a stage was trained with), found as the
    run that saved it meant it: as given when that exists (absolute, or relative to the working
    directory), else relative to the nearest folder above the checkpoint where it exists, so
    the demo's `outputs/demo/checkpoints/prior.pt` is found from any directory. Not found, it
    comes back as given, for the loader's error to name."""
    path = Path(stored).expanduser()
    if path.is_absolute() or path.exists():
        return str(path)
    for folder in Path(checkpoint).resolve().parents:
        if (folder / path).exists():
            return str(folder / path)
    return str(path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temp_prefix(target: Path) -> str:
    """Temporary files of `target` are named `.<name>.<host>-<pid>-<random><suffix>`: the writer's
    machine (a hash of its name) and process id say whether the file still has an owner."""
    host = zlib.crc32(socket.gethostname().encode()) & 0xFFFFFFFF
    return f".{target.name}.{host:08x}-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_temp_files(target: Path) -> list[Path]:
    """Remove the temporary files of `target` that a killed writer on this machine left.

    A writer stopped by SIGKILL (or a crash) cannot clean up; its file is stale once no live
    process has its pid. Files of live writers and of other machines are kept. Returns what
    was removed.
    """
    prefix = _temp_prefix(target)
    pattern = re.compile(rf"{re.escape(prefix)}(\d+)-[^.]*{re.escape(target.suffix)}")
    removed = []
    for path in target.parent.glob(f"{glob.escape(prefix)}*"):
        match = pattern.fullmatch(path.name)
        if match and not _pid_alive(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def check_output_file(path: str | os.PathLike, what: str = "output") -> Path:
    """`path` as a Path if a file can be written there; else a one-line error naming it.

    Checked before any work: the folder exists and is writable, and `path` is not a folder.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise ValueError(f"{what} {path} is a folder; give a file name")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"output folder does not exist: {path.parent}")
    try:
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as error:
        raise ValueError(f"cannot write {what} {path}: {error.strerror}") from None
    return path


def refuse_overwriting_inputs(
    outputs: Mapping[str, str | os.PathLike | None], inputs: Mapping[str, str | os.PathLike | None]
) -> None:
    """Raise ValueError when an output (option name -> path) is one of the input files.

    Compared as files (`os.path.samefile`: resolved paths, symbolic and hard links), so
    `--out ./x.mp4` and `--audio x.mp4` are caught too.
    """
    for out_name, out in outputs.items():
        for in_name, source in inputs.items():
            if out is None or source is None:
                continue
            out, source = Path(out).expanduser(), Path(source).expanduser()
            if out.exists() and source.exists() and os.path.samefile(out, source):
                raise ValueError(
                    f"{out_name} {out} is the input {in_name}: it would be overwritten; "
                    "write the output elsewhere"
                )


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed onto `path`.

    On any exception (and on SIGTERM in a tool, see `sgvideo.errors`) the temporary file is
    removed, so readers never see a half-written file and a failed run leaves nothing behind.
    Temporary files of `path` left by killed writers are removed first.
    """
    target = Path(path)
    if not target.parent.is_dir():
        raise FileNotFoundError(f"output folder does not exist: {target.parent}")
    if target.is_dir():
        raise ValueError(f"cannot write {target}: it is a folder")
    remove_stale_temp_files(target)
    prefix = f"{_temp_prefix(target)}{os.getpid()}-"
    try:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=target.suffix, dir=target.parent)
    except OSError as error:
        raise ValueError(f"cannot write {target}: {error.strerror}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def read_torch_file(
    path: Path, what: str, hint: str = "", safe_globals: Sequence[type] = ()
) -> Any:
    """`torch.load(path, weights_only=True)` on the CPU; a file that is not one (truncated, a
    text file, another pickle) is a one-line ValueError naming it, whatever torch raised."""
    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # zip, pickle, EOF, KeyError, OSError, ... depending on the bytes
        hint = f" {hint}." if hint else ""
        raise ValueError(
            f"cannot read {path} as a PyTorch checkpoint: the {what} is truncated or not a "
            f"PyTorch file.{hint} ({describe(error)})"
        ) from error
