"""StyleGAN2 checkpoints in rosinality/stylegan2-pytorch's format: read and written.

A checkpoint is a `torch.save`d dict with `g_ema`, optionally `g`, `d`, `latent_avg` and `args`.
The loaders infer the architecture from the tensors' shapes, load with `strict=True` and explain
what does not fit.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from sgvideo.files import atomic_path, read_torch_file, require_file
from sgvideo.models.stylegan2 import Discriminator, Generator, channel_table

# The mapping network's learning-rate multiplier every rosinality checkpoint assumes.
ROSINALITY_LR_MLP = 0.01
_CHECKPOINT_HINT = (
    "Expected a rosinality/stylegan2-pytorch checkpoint (a dict with 'g_ema', optionally 'g', 'd',"
    " 'latent_avg'); NVlabs .pkl files must first be converted with rosinality's convert_weight.py"
)


def save_rosinality_checkpoint(
    path: str | os.PathLike,
    *,
    g_ema: Generator,
    g: Generator | None = None,
    d: Discriminator | None = None,
    latent_avg: Tensor | None = None,
) -> Path:
    """Write a rosinality-format checkpoint atomically; `args` records the architecture.

    Generators trained with another mapping learning-rate multiplier than rosinality's are
    written in its convention (`_generator_state`), so any loader reads the same mapping.
    """
    ckpt: dict[str, object] = {"g_ema": _generator_state(g_ema), "args": g_ema.config()}
    if g is not None:
        ckpt["g"] = _generator_state(g)
    if d is not None:
        ckpt["d"] = _cpu_state(d)
    if latent_avg is not None:
        if latent_avg.numel() != g_ema.style_dim:
            raise ValueError(
                f"latent_avg must have {g_ema.style_dim} values, "
                f"got shape {tuple(latent_avg.shape)}"
            )
        ckpt["latent_avg"] = latent_avg.detach().reshape(-1).float().cpu()
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return Path(path)


def load_generator(
    path: str | os.PathLike,
    map_location: str | torch.device = "cpu",
    *,
    size: int | None = None,
    modconv: str = "auto",
    precision: str = "fp32",
) -> Generator:
    """Frozen (eval, no grad) `g_ema` of a rosinality checkpoint, architecture read from shapes.

    `w_avg` comes from the checkpoint's `latent_avg`, else from 4096 seeded samples. `size`, when
    given, is checked against the checkpoint.
    """
    ckpt = _read_checkpoint(path, "StyleGAN2 generator checkpoint")
    state = _state_entry(ckpt, "g_ema", path)
    config = _generator_config(state, _saved_args(ckpt), path)
    _check_size(config["size"], size, path)
    generator = Generator(**config, modconv=modconv, precision=precision)
    _load_state(generator, state, "g_ema", path)
    latent_avg = ckpt.get("latent_avg")
    if latent_avg is None:
        w_avg = generator.mean_latent(4096, generator=torch.Generator().manual_seed(0))
    elif isinstance(latent_avg, Tensor) and latent_avg.numel() == generator.style_dim:
        w_avg = latent_avg
    else:
        found = tuple(latent_avg.shape) if isinstance(latent_avg, Tensor) else type(latent_avg)
        raise ValueError(
            f"{path}: 'latent_avg' must hold {generator.style_dim} values, found {found}"
        )
    generator.w_avg.copy_(w_avg.reshape(-1))
    return generator.eval().requires_grad_(False).to(map_location)


def load_discriminator(
    path: str | os.PathLike, map_location: str | torch.device = "cpu", *, size: int | None = None
) -> Discriminator:
    """Frozen (eval, no grad) `d` of a rosinality checkpoint (`.train().requires_grad_()`
    to fine-tune it); architecture read from the shapes, `size` checked when given."""
    ckpt = _read_checkpoint(path, "StyleGAN2 discriminator checkpoint")
    state = _state_entry(ckpt, "d", path)
    config = _discriminator_config(state, _saved_args(ckpt), path)
    _check_size(config["size"], size, path)
    discriminator = Discriminator(**config)
    _load_state(discriminator, state, "d", path)
    return discriminator.eval().requires_grad_(False).to(map_location)


def _cpu_state(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().cpu() for k, v in module.state_dict().items()}


def _generator_state(generator: Generator) -> dict[str, Tensor]:
    """The generator's state with its mapping layers as rosinality's lr_mlp would store them.

    An equalised linear layer computes with weight * lr_mul and bias * lr_mul, so a layer
    trained with lr_mul m is the same function as one with ROSINALITY_LR_MLP whose parameters
    are m / ROSINALITY_LR_MLP times larger.
    """
    state = _cpu_state(generator)
    for name, layer in generator.style.named_children():
        factor = getattr(layer, "lr_mul", ROSINALITY_LR_MLP) / ROSINALITY_LR_MLP
        if factor != 1.0:
            for key in (f"style.{name}.weight", f"style.{name}.bias"):
                state[key] = state[key] * factor
    return state


def _read_checkpoint(path: str | os.PathLike, what: str) -> dict:
    file = require_file(path, what, hint=_CHECKPOINT_HINT)
    # train.py of rosinality pickles its argparse.Namespace as `args`: harmless, so allow it
    ckpt = read_torch_file(file, what, _CHECKPOINT_HINT, safe_globals=[argparse.Namespace])
    if not isinstance(ckpt, dict):
        raise ValueError(f"{file} holds a {type(ckpt).__name__}, not a dict. {_CHECKPOINT_HINT}")
    return ckpt


def _state_entry(ckpt: dict, key: str, path: str | os.PathLike) -> Mapping[str, Tensor]:
    state = ckpt.get(key)
    if isinstance(state, Mapping):
        return state
    found = sorted(map(str, ckpt))[:8]
    bare = any(isinstance(v, Tensor) for v in ckpt.values())
    hint = f" (a bare state dict? wrap it as {{'{key}': state_dict}})" if bare else ""
    raise ValueError(
        f"{path} has no '{key}' state dict; top-level keys found: {found}{hint}. {_CHECKPOINT_HINT}"
    )


def _saved_args(ckpt: dict) -> dict:
    args = ckpt.get("args")
    if isinstance(args, argparse.Namespace):
        return vars(args)
    return args if isinstance(args, dict) else {}


def _shape(state: Mapping[str, Tensor], key: str, ndim: int, path: str | os.PathLike) -> tuple:
    value = state.get(key)
    if not isinstance(value, Tensor) or value.ndim != ndim:
        found = tuple(value.shape) if isinstance(value, Tensor) else "nothing"
        examples = list(state)[:5]
        raise ValueError(
            f"{path}: expected a {ndim}-d tensor '{key}', found {found} (keys found include "
            f"{examples}). {_CHECKPOINT_HINT}"
        )
    return tuple(value.shape)


def _indices(state: Mapping[str, Tensor], pattern: str) -> list[int]:
    regex = re.compile(pattern)
    return sorted(int(m.group(1)) for k in state if (m := regex.fullmatch(k)))


def _generator_config(state: Mapping[str, Tensor], args: dict, path: str | os.PathLike) -> dict:
    style_dim = _shape(state, "style.1.weight", 2, path)[1]
    n_rgbs = len(_indices(state, r"to_rgbs\.(\d+)\.conv\.weight"))
    channels = {4: _shape(state, "input.input", 4, path)[1]}
    for i in range(n_rgbs):
        channels[2 ** (i + 3)] = _shape(state, f"to_rgbs.{i}.conv.weight", 5, path)[2]
    multiplier, channel_max = _channel_layout(channels, args, path)
    return {
        "size": 2 ** (n_rgbs + 2),
        "style_dim": style_dim,
        "n_mlp": len(_indices(state, r"style\.(\d+)\.weight")),
        "channel_multiplier": multiplier,
        "channel_max": channel_max,
    }


def _discriminator_config(state: Mapping[str, Tensor], args: dict, path: str | os.PathLike) -> dict:
    n_blocks = len(_indices(state, r"convs\.(\d+)\.conv1\.0\.weight"))
    log_size = n_blocks + 2
    channels = {2**log_size: _shape(state, "convs.0.0.weight", 4, path)[0]}
    for k in range(1, n_blocks + 1):
        channels[2 ** (log_size - k)] = _shape(state, f"convs.{k}.conv2.1.weight", 4, path)[0]
    multiplier, channel_max = _channel_layout(channels, args, path)
    return {"size": 2**log_size, "channel_multiplier": multiplier, "channel_max": channel_max}


def _channel_layout(
    channels: dict[int, int], args: dict, path: str | os.PathLike
) -> tuple[int, int]:
    """(channel_multiplier, channel_max) reproducing the channels seen per resolution.

    Sizes up to 32 px do not depend on the multiplier: the saved `args` (else 2) decide.
    """
    size = max(channels)
    if size < 8:
        raise ValueError(f"{path}: no upsampling layers found; not a StyleGAN2 checkpoint")
    multipliers = [args.get("channel_multiplier", 2), 2]
    base = channel_table(size, channel_multiplier=1, channel_max=1 << 30)
    multipliers += [c // base[r] for r, c in channels.items() if r >= 64]
    maxima = [args.get("channel_max", 512), 512, *channels.values()]
    for multiplier in dict.fromkeys(m for m in multipliers if isinstance(m, int) and m > 0):
        for channel_max in dict.fromkeys(maxima):
            if channel_table(size, multiplier, channel_max) == channels:
                return multiplier, channel_max
    raise ValueError(
        f"{path}: channels per resolution {channels} fit no StyleGAN2 channel_multiplier / "
        "channel_max"
    )


def _check_size(found: int, expected: int | None, path: str | os.PathLike) -> None:
    if expected is not None and found != expected:
        raise ValueError(f"{path}: expected a {expected} px model, the checkpoint is {found} px")


def _load_state(
    model: Generator | Discriminator,
    state: Mapping[str, Tensor],
    key: str,
    path: str | os.PathLike,
) -> None:
    """load_state_dict(strict=True), after a readable report of what does not fit."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {
        k: tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__ for k, v in state.items()
    }
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    mismatched = [
        f"{k}: expected {expected[k]}, found {found[k]}"
        for k in expected
        if k in found and found[k] != expected[k]
    ]
    problems = [
        f"{len(items)} {label} (e.g. {items[:4]})"
        for label, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", mismatched),
        )
        if items
    ]
    if problems:
        raise ValueError(
            f"{path}: '{key}' does not fit {type(model).__name__}({_describe(model)}): "
            + "; ".join(problems)
        )
    model.load_state_dict(state, strict=True)


def _describe(model: Generator | Discriminator) -> str:
    return ", ".join(f"{k}={v}" for k, v in model.config().items())
