"""CLIP audio-visual score: how close each frame sits to its own sound in the joint space."""

from __future__ import annotations

from collections.abc import Callable

import torch
from einops import rearrange
from torch.nn import functional as F
from torchmetrics import Metric

Encoder = Callable[[torch.Tensor], torch.Tensor]


class CLIPAudioVisualScore(Metric):
    """Mean cosine similarity between the audio embedding of each frame's sound window and the
    CLIP image embedding of that frame, over all frames seen.

    `audio_encoder` maps mel "n n_mels time" -> "n d" (the stage-0 audio encoder) and
    `image_encoder` maps images "n 3 h w" in [-1, 1] -> "n d" (e.g.
    `lambda x: clip_image_embed(clip, x)`); nn.Modules among them move with the metric.
    `update(frames "b t 3 h w", mel "b t n_mels time")`, or with embeddings computed elsewhere:
    `update(audio_embeddings="n d", image_embeddings="n d")`.
    """

    higher_is_better = True
    is_differentiable = False
    full_state_update = False

    def __init__(
        self, audio_encoder: Encoder | None = None, image_encoder: Encoder | None = None, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.audio_encoder = audio_encoder
        self.image_encoder = image_encoder
        self.add_state("score_sum", torch.zeros((), dtype=torch.float64), "sum")
        self.add_state("count", torch.zeros((), dtype=torch.float64), "sum")

    def update(
        self,
        frames: torch.Tensor | None = None,
        mel: torch.Tensor | None = None,
        *,
        audio_embeddings: torch.Tensor | None = None,
        image_embeddings: torch.Tensor | None = None,
    ) -> None:
        with torch.no_grad():
            if frames is not None or mel is not None:
                audio_embeddings, image_embeddings = self._embed(frames, mel)
            if audio_embeddings is None or image_embeddings is None:
                raise ValueError(
                    "CLIPAudioVisualScore.update needs frames and mel, "
                    "or audio_embeddings and image_embeddings"
                )
            if audio_embeddings.dim() != 2 or audio_embeddings.shape != image_embeddings.shape:
                raise ValueError(
                    "audio and image embeddings must both be 'n d' of one shape, got "
                    f"{tuple(audio_embeddings.shape)} and {tuple(image_embeddings.shape)}"
                )
            cosine = F.cosine_similarity(
                audio_embeddings.to(torch.float64), image_embeddings.to(torch.float64), dim=-1
            )
        self.score_sum += cosine.sum()
        self.count += cosine.numel()

    def _embed(
        self, frames: torch.Tensor | None, mel: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if frames is None or mel is None:
            raise ValueError("CLIPAudioVisualScore.update needs both frames and mel")
        if self.audio_encoder is None or self.image_encoder is None:
            raise ValueError(
                "CLIPAudioVisualScore was built without audio_encoder/image_encoder: "
                "pass embeddings instead"
            )
        if frames.dim() != 5 or mel.dim() != 4 or frames.shape[:2] != mel.shape[:2]:
            raise ValueError(
                "expected frames 'b t 3 h w' and mel 'b t n_mels time' with the same b and t, got "
                f"{tuple(frames.shape)} and {tuple(mel.shape)}"
            )
        audio = self.audio_encoder(rearrange(mel, "b t m s -> (b t) m s"))
        image = self.image_encoder(rearrange(frames, "b t c h w -> (b t) c h w"))
        return audio, image

    def compute(self) -> torch.Tensor:
        if self.count == 0:
            raise ValueError("CLIPAudioVisualScore: no frames were scored")
        return self.score_sum / self.count
