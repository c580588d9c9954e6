"""JIT build of the CUDA kernels in csrc/ with torch.utils.cpp_extension (ninja), cached on disk.

The extension's name carries a hash of the sources and of the Python/torch/CUDA versions, so each
version gets a build folder of its own: a cached build is only reused when it is exactly right,
and a new checkout never overwrites a library another job has loaded. Inside one folder,
cpp_extension's file lock (`<build dir>/lock`) lets one process (e.g. DDP rank) build while the
others wait and then load the result.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from types import ModuleType

import torch

CSRC = Path(__file__).parent / "csrc"
SOURCES = ("ops.cpp", "upfirdn2d.cu", "bias_act.cu")


def extension_name() -> str:
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update((CSRC / name).read_bytes())
    versions = (sys.version, torch.__version__, str(torch.version.cuda))
    digest.update("|".join(versions).encode())
    return f"sgvideo_stylegan2_ops_{digest.hexdigest()[:16]}"


def build_directory() -> Path:
    """`$TORCH_EXTENSIONS_DIR/<name>`, else torch's default cache (~/.cache/torch_extensions)."""
    from torch.utils.cpp_extension import get_default_build_root

    root = os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root()
    return Path(root) / extension_name()


def compile_extension(verbose: bool = False) -> ModuleType:
    """Build (first time) or load (cached) the extension; raises whatever the build raises."""
    from torch.utils.cpp_extension import load

    directory = build_directory()
    directory.mkdir(parents=True, exist_ok=True)
    return load(
        name=extension_name(),
        sources=[str(CSRC / name) for name in SOURCES],
        build_directory=str(directory),
        verbose=verbose,
    )
