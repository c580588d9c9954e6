"""stylegan2_ops timings at StyleGAN2 (256 px) shapes.

CPU: the native ops against the literal formulation in stylegan2_ops.reference (zero insertion,
per-channel conv2d, strided slicing: rosinality's `upfirdn2d_native` works the same way).
CUDA (when present): native against the compiled kernels, forward and forward + backward.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence

import torch

from stylegan2_ops import fused_leaky_relu, upfirdn2d
from stylegan2_ops.reference import fused_leaky_relu_reference, upfirdn2d_reference
from stylegan2_ops.shapes import parse_pad

_K1 = torch.tensor([1.0, 3.0, 3.0, 1.0])
BLUR = torch.outer(_K1, _K1) / _K1.sum() ** 2

# name, (channels, size), up, down, pad, kernel gain; as used by rosinality's Upsample (ToRGB
# skip), Blur after the transposed up-conv, Blur before the strided down-conv, and Downsample.
UPFIRDN_CASES = [
    ("upsample x2 (ToRGB skip)", (3, 128), 2, 1, (2, 1), 4.0),
    ("blur after up-conv", (256, 65), 1, 1, (1, 1), 4.0),
    ("blur before down-conv", (128, 64), 1, 1, (2, 2), 1.0),
    ("downsample x2", (128, 64), 1, 2, (1, 1), 1.0),
]
ACT_CASES = [
    ("fused_leaky_relu 512ch 16px", (512, 16)),
    ("fused_leaky_relu 128ch 128px", (128, 128)),
]


Op = Callable[[torch.Tensor], torch.Tensor]


@contextlib.contextmanager
def _ops_mode(mode: str) -> Iterator[None]:
    old = os.environ.get("SGVIDEO_OPS")
    os.environ["SGVIDEO_OPS"] = mode
    try:
        yield
    finally:
        if old is None:
            del os.environ["SGVIDEO_OPS"]
        else:
            os.environ["SGVIDEO_OPS"] = old


def _time_ms(fn: Op, x: torch.Tensor, reps: int) -> float:
    """Best of `reps` runs of fn(x) after one warm-up, in ms (best: the machine may be shared)."""
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    fn(x)
    sync()
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        fn(x)
        sync()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def _cases(batch: int, device: torch.device) -> Iterator[tuple[str, dict, Op, Op, torch.Tensor]]:
    """(name, context, op, literal reference, input) for every benchmarked shape."""
    for name, (channels, size), up, down, pad, gain in UPFIRDN_CASES:
        x = torch.randn(batch, channels, size, size, device=device)
        k = (BLUR * gain).to(device)
        yield (
            f"upfirdn2d {name}",
            {"shape": list(x.shape), "up": up, "down": down, "pad": list(pad)},
            lambda x, k=k, u=up, d=down, p=pad: upfirdn2d(x, k, up=u, down=d, pad=p),
            lambda x, k=k, u=up, d=down, p=pad: upfirdn2d_reference(x, k, u, d, parse_pad(p)),
            x,
        )
    for name, (channels, size) in ACT_CASES:
        x = torch.randn(batch, channels, size, size, device=device)
        b = torch.randn(channels, device=device)
        yield (
            name,
            {"shape": list(x.shape)},
            lambda x, b=b: fused_leaky_relu(x, b),
            lambda x, b=b: fused_leaky_relu_reference(x, b, 0.2, 2**0.5),
            x,
        )


def _cpu_rows(batch: int, reps: int) -> list[dict]:
    rows = []
    with torch.no_grad():
        for name, context, op, reference, x in _cases(batch, torch.device("cpu")):
            ours = _time_ms(op, x, reps)
            literal = _time_ms(reference, x, reps)
            common = {"device": "cpu", "batch": batch, **context}
            rows.append({"name": f"{name} native cpu", "value": ours, "unit": "ms", **common})
            speedup = literal / ours
            rows.append({"name": f"{name} vs literal", "value": speedup, "unit": "x", **common})
    return rows


def _forward_backward(op: Op) -> Op:
    def step(x: torch.Tensor) -> torch.Tensor:
        leaf = x.detach().requires_grad_()
        return torch.autograd.grad(op(leaf).square().sum(), leaf)[0]

    return step


def _cuda_rows(batch: int, reps: int) -> list[dict]:
    rows = []
    for name, context, op, _, x in _cases(batch, torch.device("cuda")):
        common = {"device": torch.cuda.get_device_name(), "batch": batch, **context}
        timings = {}
        for mode in ("native", "cuda"):
            with _ops_mode(mode):
                with torch.no_grad():
                    timings[mode] = _time_ms(op, x, reps)
                timings[f"{mode} fwd+bwd"] = _time_ms(_forward_backward(op), x, reps)
        for key, value in timings.items():
            rows.append({"name": f"{name} {key} gpu", "value": value, "unit": "ms", **common})
        for suffix in ("", " fwd+bwd"):
            speedup = timings[f"native{suffix}"] / timings[f"cuda{suffix}"]
            rows.append({"name": f"{name} compiled{suffix} speedup", "value": speedup, "unit": "x"})
            rows[-1].update(common)
    return rows


def run(quick: bool, devices: Sequence[str] = ("cpu",)) -> list[dict]:
    batch, reps = (4, 3) if quick else (8, 10)
    rows = _cpu_rows(batch, reps) if "cpu" in devices else []
    if "cuda" in devices:
        rows += _cuda_rows(batch, reps)
    return rows
