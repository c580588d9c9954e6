"""StyleGAN2 synthesis speed at 256 px: modulated-conv forms, precision, and ops on CUDA.

Rows: images/s and GFLOP/s of `Generator(256).synthesis` at batch 1 and 8 on CPU for the
baseline (fp32 "fused" grouped convolution in NCHW: rosinality's form), the default fp32 path
("auto": non-fused, channels_last) and bf16; speed-ups over the baseline; PSNR of the other
paths' images against the baseline's (same W+, constant noise). The full run adds the other
combinations (fused channels_last, non-fused NCHW, bf16 fused). With CUDA: the synthesis with
the native ops and with the compiled ops, fused and non-fused.

GFLOP are counted analytically from the convolution shapes (`synthesis_gflop`): "nominal"
counts each upsampling 3x3 conv at its output resolution (about 167 GFLOP per 256 px image);
the stride-2 transposed conv really executes a quarter of that (about 90 GFLOP in all).
GFLOP/s rows use the nominal count. Multi-threaded CPU timings are only comparable on an idle
machine: a busy core stalls every OpenMP barrier, so rows record the load average.
Run: `make bench ARGS="--only synthesis [--quick]"`.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F

from sgvideo.models.stylegan2 import Generator
from sgvideo.models.stylegan2_layers import ModulatedConv2d

SIZE = 256
# (label, modconv, precision, channels_last); the first is the baseline of every comparison
BASELINE = ("fp32 fused NCHW", "fused", "fp32", False)
VARIANTS = (BASELINE, ("fp32 auto", "auto", "fp32", True), ("bf16 auto", "auto", "bf16", True))
EXTRA_VARIANTS = (
    ("fp32 fused channels_last", "fused", "fp32", True),
    ("fp32 nonfused NCHW", "nonfused", "fp32", False),
    ("bf16 fused NCHW", "fused", "bf16", False),
)


def synthesis_gflop(generator: Generator) -> tuple[float, float]:
    """(nominal, executed) GFLOP of one image's modulated convolutions (2 FLOP per MAC)."""
    nominal = executed = 0.0
    side = 4
    for conv in _convs_in_order(generator):
        if conv.upsample:
            side *= 2
        macs = conv.in_channel * conv.out_channel * conv.kernel_size**2 * side * side
        nominal += 2 * macs
        executed += 2 * macs / (4 if conv.upsample else 1)
    return nominal / 1e9, executed / 1e9


def _convs_in_order(generator: Generator) -> Iterator[ModulatedConv2d]:
    yield generator.conv1.conv
    yield generator.to_rgb1.conv
    for k, to_rgb in enumerate(generator.to_rgbs):
        yield generator.convs[2 * k].conv
        yield generator.convs[2 * k + 1].conv
        yield to_rgb.conv


def _seconds(generator: Generator, w_plus: torch.Tensor, reps: int) -> float:
    """Best of `reps` timed calls after one warm-up call."""
    sync = torch.cuda.synchronize if w_plus.is_cuda else (lambda: None)
    generator.synthesis(w_plus)
    best = math.inf
    for _ in range(reps):
        sync()
        start = time.perf_counter()
        generator.synthesis(w_plus)
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def _reps(batch: int, quick: bool) -> int:
    """Timed repetitions: batch 1 is short and noisier, so it gets more."""
    return (3 if quick else 5) if batch == 1 else (1 if quick else 3)


def _psnr(image: torch.Tensor, reference: torch.Tensor) -> float:
    """PSNR for images in [-1, 1] (peak-to-peak 2); inf for identical images."""
    mse = F.mse_loss(image.float(), reference.float()).item()
    return 10 * math.log10(4 / mse) if mse > 0 else math.inf


@contextlib.contextmanager
def _ops(mode: str) -> Iterator[None]:
    """Temporarily set $SGVIDEO_OPS (read at every op call)."""
    saved = os.environ.get("SGVIDEO_OPS")
    os.environ["SGVIDEO_OPS"] = mode
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("SGVIDEO_OPS")
        else:
            os.environ["SGVIDEO_OPS"] = saved


def _generator(device: str) -> Generator:
    torch.manual_seed(0)
    generator = Generator(SIZE).eval().requires_grad_(False)
    for conv in generator.convs:  # trained models inject noise; a new one has zero strength
        conv.noise.weight.fill_(0.1)
    generator.w_avg.copy_(generator.mean_latent(1024)[0])
    return generator.to(device)


def _w_plus(generator: Generator, batch: int) -> torch.Tensor:
    z = torch.randn(batch, generator.style_dim, generator=torch.Generator().manual_seed(batch))
    w = generator.truncate(generator.mapping(z.to(generator.w_avg.device)), 0.7)
    return w[:, None].expand(-1, generator.n_latent, -1).contiguous()


def _cpu_rows(quick: bool) -> list[dict]:
    generator = _generator("cpu")
    nominal, executed = synthesis_gflop(generator)
    variants = VARIANTS if quick else VARIANTS + EXTRA_VARIANTS
    rows: list[dict] = []
    for batch in (1, 8):
        w_plus = _w_plus(generator, batch)
        seconds, images = {}, {}
        with torch.inference_mode():
            for label, modconv, precision, channels_last in variants:
                generator.modconv, generator.precision = modconv, precision
                generator.channels_last = channels_last
                seconds[label] = _seconds(generator, w_plus, _reps(batch, quick))
                images[label] = generator.synthesis(w_plus)
        case = {
            "device": "cpu",
            "threads": torch.get_num_threads(),
            # other processes on these cores slow multi-threaded runs a lot: say how busy it was
            "load_average_1min": os.getloadavg()[0],
            "size": SIZE,
            "batch": batch,
            "gflop_nominal": round(nominal, 1),
            "gflop_executed": round(executed, 1),
        }
        for label, modconv, precision, channels_last in variants:
            variant = case | {
                "modconv": modconv,
                "precision": precision,
                "channels_last": channels_last,
            }
            per_second = batch / seconds[label]
            rows.append(_row(f"synthesis {label} b{batch}", per_second, "img/s", variant))
            rows.append(_row(f"GFLOP/s {label} b{batch}", per_second * nominal, "GFLOP/s", variant))
        for label, *_ in variants[1:]:
            speedup = seconds[BASELINE[0]] / seconds[label]
            rows.append(_row(f"speed-up {label} vs {BASELINE[0]} b{batch}", speedup, "x", case))
            psnr = _psnr(images[label], images[BASELINE[0]])
            rows.append(_row(f"PSNR {label} vs {BASELINE[0]} b{batch}", psnr, "dB", case))
    return rows


def _row(name: str, value: float, unit: str, context: dict) -> dict:
    return {"name": name, "value": value, "unit": unit} | context


def _cuda_rows(quick: bool) -> list[dict]:
    generator = _generator("cuda")
    nominal, _ = synthesis_gflop(generator)
    device = torch.cuda.get_device_name()
    rows: list[dict] = []
    for batch in (1, 8):
        w_plus = _w_plus(generator, batch)
        seconds = {}
        with torch.inference_mode():
            for ops in ("native", "cuda"):
                for modconv in ("fused", "nonfused"):
                    generator.modconv = modconv
                    with _ops(ops):
                        seconds[ops, modconv] = _seconds(generator, w_plus, 3 if quick else 10)
        generator.modconv = "auto"
        case = {"device": device, "batch": batch, "size": SIZE}
        for (ops, modconv), sec in seconds.items():
            name = f"cuda {ops} ops {modconv} b{batch}"
            context = case | {"ops": ops, "modconv": modconv}
            rows.append(_row(f"synthesis {name}", batch / sec, "img/s", context))
            rows.append(_row(f"GFLOP/s {name}", batch * nominal / sec, "GFLOP/s", context))
        speedup = seconds["native", "fused"] / seconds["cuda", "fused"]
        rows.append(_row(f"speed-up compiled vs native ops (fused) b{batch}", speedup, "x", case))
    return rows


def run(quick: bool, devices: Sequence[str] = ("cpu",)) -> list[dict]:
    rows = _cpu_rows(quick) if "cpu" in devices else []
    if "cuda" in devices:
        rows += _cuda_rows(quick)
    return rows
