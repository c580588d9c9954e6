"""Which implementation runs: `SGVIDEO_OPS=auto|native|cuda`, read at every call.

auto (default) and native: the native PyTorch ops on every device; no build is attempted. The
compiled kernels were slower than native on an NVIDIA H200 (torch 2.11, CUDA 13.0: 256 px
synthesis 0.89x at batch 1, 0.94x at batch 8), so auto does not pick them. cuda: the compiled
kernels, built once per process, or a RuntimeError (also for tensors not on a CUDA device).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from types import ModuleType

import torch

from . import build

ENV_VAR = "SGVIDEO_OPS"
MODES = ("auto", "native", "cuda")


@dataclass
class _ExtensionState:
    module: ModuleType | None = None
    error: str | None = None


_STATE = _ExtensionState()
_BUILD_LOCK = threading.Lock()


def ops_mode() -> str:
    """The mode asked for by $SGVIDEO_OPS (default auto); ValueError for anything else."""
    raw = os.environ.get(ENV_VAR, "")
    mode = raw.strip().lower() or "auto"
    if mode not in MODES:
        raise ValueError(f"{ENV_VAR}={raw!r} is not valid: use one of {', '.join(MODES)}")
    return mode


def extension() -> ModuleType:
    """The compiled kernels; the build is tried once per process and a failure is remembered."""
    with _BUILD_LOCK:
        if _STATE.module is None and _STATE.error is None:
            try:
                _STATE.module = build.compile_extension()
            except Exception as exc:  # any build/load failure (no nvcc, compiler error, ...)
                _STATE.error = f"{type(exc).__name__}: {exc}".strip()
    if _STATE.module is None:
        raise RuntimeError(f"could not build the stylegan2_ops CUDA kernels: {_STATE.error}")
    return _STATE.module


def backend_for(tensor: torch.Tensor) -> str:
    """ "native" or "cuda": the implementation the ops use for this tensor under $SGVIDEO_OPS."""
    if ops_mode() != "cuda":
        return "native"
    if tensor.device.type != "cuda":
        raise RuntimeError(
            f"{ENV_VAR}=cuda needs CUDA tensors, got one on {tensor.device}; "
            f"use {ENV_VAR}=auto or native for CPU tensors"
        )
    try:
        extension()
    except RuntimeError as exc:
        raise RuntimeError(f"{ENV_VAR}=cuda: {exc}") from None
    return "cuda"
