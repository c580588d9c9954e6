"""OpenAI CLIP: loading from a local file (or a tiny random one), saving, tensor-side helpers.

Nothing here touches the network: `load_clip` accepts only an existing file or "tiny". Images
are preprocessed in torch on their own device (resize + CLIP mean/std), differentiably, so
losses on generated images back-propagate through CLIP into the generator's latents.
`save_clip` writes a CLIP (e.g. one trained by `sgvideo clip fit`) in the layout of OpenAI's
files, which `load_clip` and `clip.model.build_model` read.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import clip
import torch
from clip.model import CLIP, build_model
from torch.nn import functional as F

from sgvideo.errors import NotWeightsError
from sgvideo.files import atomic_path, require_file

CLIP_ENV = "SGVIDEO_CLIP_WEIGHTS"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CLIP_URL = (
    "https://openaipublic.azureedge.net/clip/models/"
    "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt"
)
CLIP_HINT = (
    f"Download OpenAI's ViT-B/32 weights once ({CLIP_URL}), put the file e.g. at "
    f"pretrained/ViT-B-32.pt and pass its path (--model.clip PATH) or set {CLIP_ENV}. "
    'Use "tiny" for a small random CLIP (tests, demo)'
)
# What `clip.tokenize` produces: its BPE vocabulary size and default context length.
CLIP_VOCAB_SIZE = 49408
CLIP_CONTEXT_LENGTH = 77
# A ViT small enough to train on a CPU in a minute or two at 32 px (4x4 patches of 8 px):
# `build_clip` arguments.
SMALL_CLIP = dict(
    embed_dim=64,
    image_resolution=32,
    vision_layers=2,
    vision_width=64,
    vision_patch_size=8,
    transformer_width=64,
    transformer_layers=2,
)
# A seeded random CLIP for CPU tests: the small one with a 32-d joint space (`CLIP` arguments).
TINY_CLIP = SMALL_CLIP | dict(
    embed_dim=32,
    context_length=CLIP_CONTEXT_LENGTH,
    vocab_size=CLIP_VOCAB_SIZE,
    transformer_heads=1,
)


def load_clip(spec: str | os.PathLike | None, device: str | torch.device = "cpu") -> CLIP:
    """A frozen float32 CLIP in eval mode from a local checkpoint path or "tiny".

    `spec` None (or "") reads the path from $SGVIDEO_CLIP_WEIGHTS. Model names such as
    "ViT-B/32" are refused rather than downloaded. The published weights are fp16; they are
    converted to float32 here (use Lightning's mixed precision for speed).
    """
    spec = os.fspath(spec) if spec else os.environ.get(CLIP_ENV, "")
    if not spec:
        raise FileNotFoundError(f"no CLIP weights given. {CLIP_HINT}")
    if spec == "tiny":
        model = tiny_clip()
    else:
        path = require_file(spec, "CLIP weights", hint=CLIP_HINT)
        state = _read_state_dict(path)
        try:
            # build_model rounds to fp16 (the published precision); reloading the weights into
            # the float32 model keeps a float32 file (a trained miniature CLIP) exact.
            model = build_model(state).float()
            model.load_state_dict(state)
        except (KeyError, RuntimeError) as error:
            raise NotWeightsError(f"{path} is not a usable CLIP checkpoint: {error!r}") from None
    return model.float().eval().requires_grad_(False).to(device)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Weights of an OpenAI CLIP file: a TorchScript archive (as published) or a state dict.

    Does what `clip.load(path, jit=False)` does, which fails on plain state-dict files.
    """
    try:
        return torch.jit.load(str(path), map_location="cpu").state_dict()
    except RuntimeError:
        pass
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise NotWeightsError(f"{path} is not a CLIP checkpoint: {error}") from None
    has_projection = isinstance(state, dict) and (
        "visual.proj" in state or "visual.attnpool.c_proj.weight" in state
    )
    if not has_projection:
        raise NotWeightsError(f"{path} is not an OpenAI CLIP checkpoint (no visual projection)")
    return state


def build_clip(
    embed_dim: int,
    image_resolution: int,
    vision_layers: int | Sequence[int],
    vision_width: int,
    transformer_width: int,
    transformer_layers: int,
    vision_patch_size: int | None = None,
    context_length: int = CLIP_CONTEXT_LENGTH,
) -> CLIP:
    """A new randomly initialised CLIP whose saved weights `build_model` reads back as is.

    `vision_layers` an int makes a ViT (with `vision_patch_size`), four ints a ModifiedResNet.
    `build_model` infers the attention heads as width / 64 (as CLIP's constructor does for the
    image tower), so both widths must be multiples of 64; the vocabulary is `clip.tokenize`'s.
    """
    vit = isinstance(vision_layers, int)
    for name, width in (("vision_width", vision_width), ("transformer_width", transformer_width)):
        if width <= 0 or width % 64:
            raise ValueError(f"{name} must be a positive multiple of 64, got {width}")
    if vit and (not vision_patch_size or image_resolution % vision_patch_size):
        raise ValueError(
            f"a ViT needs a vision_patch_size dividing image_resolution {image_resolution}, "
            f"got {vision_patch_size}"
        )
    if not vit and (len(vision_layers) != 4 or image_resolution % 32):
        raise ValueError(
            "a ModifiedResNet needs 4 vision_layers and an image_resolution divisible by 32, "
            f"got {list(vision_layers)} and {image_resolution}"
        )
    return CLIP(
        embed_dim=embed_dim,
        image_resolution=image_resolution,
        vision_layers=vision_layers if vit else tuple(vision_layers),
        vision_width=vision_width,
        vision_patch_size=vision_patch_size if vit else None,
        context_length=context_length,
        vocab_size=CLIP_VOCAB_SIZE,
        transformer_width=transformer_width,
        transformer_heads=transformer_width // 64,
        transformer_layers=transformer_layers,
    )


def clip_state_dict(model: CLIP) -> dict[str, torch.Tensor]:
    """CLIP's weights in the layout of OpenAI's files: the module's state dict (on the CPU)
    plus the `input_resolution`, `context_length` and `vocab_size` entries their TorchScript
    archives carry (which `build_model` skips)."""
    state = {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}
    state["input_resolution"] = torch.tensor(model.visual.input_resolution)
    state["context_length"] = torch.tensor(model.context_length)
    state["vocab_size"] = torch.tensor(model.vocab_size)
    return state


def save_clip(model: CLIP, path: str | os.PathLike) -> Path:
    """Write `clip_state_dict(model)` to `path` atomically (creating its folder); `load_clip`
    reads it back exactly, as it reads ViT-B-32.pt."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(clip_state_dict(model), tmp)
    return path


def tiny_clip(seed: int = 0) -> CLIP:
    """A small randomly initialised CLIP, identical for a given seed (global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return CLIP(**TINY_CLIP)


def clip_embed_dim(model: CLIP) -> int:
    """Dimension of CLIP's joint image-text space (512 for ViT-B/32)."""
    return int(model.text_projection.shape[1])


def clip_preprocess(model: CLIP, images: torch.Tensor) -> torch.Tensor:
    """ "b 3 h w" in [-1, 1] -> CLIP's normalised input at its resolution, differentiably."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be 'b 3 h w', got {tuple(images.shape)}")
    size = model.visual.input_resolution
    x = (images.float() + 1.0) / 2.0
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    mean = x.new_tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(CLIP_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def clip_image_embed(model: CLIP, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """ "b 3 h w" images in [-1, 1] -> "b d" CLIP image embeddings (unit length by default)."""
    embed = model.encode_image(clip_preprocess(model, images).to(model.dtype)).float()
    return F.normalize(embed, dim=-1) if normalize else embed


@torch.no_grad()
def clip_text_embed(model: CLIP, prompts: Sequence[str], normalize: bool = True) -> torch.Tensor:
    """Prompts -> "b d" CLIP text embeddings (unit length by default); no gradient (constant)."""
    embed = model.encode_text(clip_tokens(model, prompts)).float()
    return F.normalize(embed, dim=-1) if normalize else embed


def clip_tokens(model: CLIP, prompts: Sequence[str]) -> torch.Tensor:
    """Prompts -> "b context_length" BPE tokens for `model`, on its device (too long: cut)."""
    if isinstance(prompts, str) or not prompts:
        raise ValueError(f"prompts must be a non-empty list of strings, got {prompts!r}")
    tokens = clip.tokenize(list(prompts), context_length=model.context_length, truncate=True)
    return tokens.to(model.text_projection.device)


@torch.no_grad()
def zero_shot_accuracy(
    model: CLIP,
    frames: torch.Tensor,
    labels: torch.Tensor,
    categories: Sequence[str],
    template: str = "a photo of {}",
    batch_size: int = 256,
) -> float:
    """Share of frames "n 3 h w" in [-1, 1] whose nearest category prompt (`prompts_for`
    with `template`) in CLIP space is their label "n" (indices into `categories`)."""
    if frames.shape[0] != labels.shape[0] or frames.shape[0] == 0:
        raise ValueError(
            f"need as many labels as frames (> 0), got {tuple(labels.shape)} "
            f"for {tuple(frames.shape)}"
        )
    text = clip_text_embed(model, prompts_for(categories, template))
    device = text.device
    hits = sum(
        (
            (clip_image_embed(model, chunk.to(device)) @ text.T).argmax(dim=1)
            == chunk_labels.to(device)
        )
        .sum()
        .item()
        for chunk, chunk_labels in zip(
            frames.split(batch_size), labels.split(batch_size), strict=True
        )
    )
    return hits / frames.shape[0]


def prompts_for(categories: Sequence[str], template: str = "a photo of {}") -> list[str]:
    """One text prompt per category; underscores in names read as spaces ("fire_crackling")."""
    if "{}" not in template:
        raise ValueError(f"prompt template must contain '{{}}', got {template!r}")
    return [template.format(name.replace("_", " ")) for name in categories]
