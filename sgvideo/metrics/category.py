"""Category accuracy: does a frame show the category of the sound it was made from?"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

# frames "n 3 h w" in [-1, 1] -> category logits (or similarities) "n k"
Classifier = Callable[[Tensor], Tensor]


class CategoryAccuracy(Metric):
    """Fraction of frames a classifier labels with their category, overall and per category.

    accuracy = sum_i [argmax_k classify(x_i)_k = y_i] / n over all frames x_i seen; chance is
    1 / k for k categories. `update(frames "n 3 h w" in [-1, 1], categories "n" long)`.
    State: per category the correct and total frame counts "k" (float64, summed across
    processes), so `compute()` (overall) and `per_category()` ("k", NaN where no frame was seen)
    are exact after a merge. `classify` is e.g. a `FrameJudge` or `clip_zero_shot(...)`.

    Example: `acc = CategoryAccuracy(judge, len(judge.categories)); acc.update(frames,
    torch.full((len(frames),), judge.label("rain"))); acc.compute()`.
    """

    higher_is_better = True
    is_differentiable = False
    full_state_update = False

    def __init__(self, classify: Classifier, num_categories: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.classify = classify
        self.num_categories = int(num_categories)
        k = self.num_categories
        self.add_state("correct", torch.zeros(k, dtype=torch.float64), "sum")
        self.add_state("total", torch.zeros(k, dtype=torch.float64), "sum")

    def update(self, frames: Tensor, categories: Tensor) -> None:
        if frames.dim() != 4 or categories.shape != frames.shape[:1]:
            raise ValueError(
                "CategoryAccuracy expects frames 'n 3 h w' and categories 'n', got "
                f"{tuple(frames.shape)} and {tuple(categories.shape)}"
            )
        categories = categories.long().to(self.correct.device)
        if len(categories) and not 0 <= int(categories.min()) <= int(categories.max()) < len(
            self.correct
        ):
            raise ValueError(f"categories must lie in [0, {self.num_categories})")
        with torch.no_grad():
            predicted = self.classify(frames).argmax(dim=1).to(categories.device)
        hit = (predicted == categories).double()
        self.correct += torch.bincount(categories, hit, self.num_categories)
        self.total += torch.bincount(categories, minlength=self.num_categories).double()

    def compute(self) -> Tensor:
        if self.total.sum() == 0:
            raise ValueError("CategoryAccuracy: no frames were judged")
        return self.correct.sum() / self.total.sum()

    def per_category(self) -> Tensor:
        """Accuracy of each category's frames: "k" (NaN for a category with no frames)."""
        return self.correct / self.total


def clip_zero_shot(clip, categories: Sequence[str]) -> Classifier:
    """CLIP zero-shot classifier: cosine of each frame to "a photo of {category}" prompts."""
    from sgvideo.models.clip_model import clip_image_embed, clip_text_embed, prompts_for

    with torch.no_grad():
        text = clip_text_embed(clip, prompts_for(categories))

    def classify(frames: Tensor) -> Tensor:
        image = clip_image_embed(clip, frames.to(text.device))
        return image @ text.T

    return classify
