"""File helpers shared by every stage: clear errors for missing weights, atomic writes."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed onto `path`.

    On any exception the temporary file is removed, so readers never see a half-written
    file and a failed run leaves nothing behind.
    """
    target = Path(path)
    if not target.parent.is_dir():
        raise FileNotFoundError(f"output folder does not exist: {target.parent}")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)
