"""Prior coverage: the share of random prior images the frame judge labels confidently."""

from __future__ import annotations

import math

import pytest
import torch
from einops import repeat
from torch import Tensor, nn

from sgvideo.metrics.prior_coverage import prior_coverage
from sgvideo.metrics.report import prior_coverage_text

from .fixtures.models import make_tiny_models

CATEGORIES = ["fire", "rain", "water", "wind"]
SURE, UNSURE = 5.0, math.log(4)  # top probability e^5 / (e^5 + 2) ~ 0.987, and 4 / 6
# the colours a `TakingTurns` prior paints in turn: fire, fire, rain (sure), water, rain (unsure)
PALETTE = [(SURE, 0, 0), (SURE, 0, 0), (0, SURE, 0), (0, 0, UNSURE), (0, UNSURE, 0)]


class TakingTurns(nn.Module):
    """A stand-in prior whose image i is one flat colour, PALETTE[i % 5] + spread * z_i.

    It checks what `prior_coverage` must give it: one w on every W+ layer, constant noise and
    no autograd."""

    style_dim, n_latent = 3, 4

    def __init__(self, spread: float = 0.0) -> None:
        super().__init__()
        self.palette = nn.Parameter(torch.tensor(PALETTE), requires_grad=False)
        self.spread, self.drawn = spread, 0

    def mapping(self, z: Tensor) -> Tensor:
        turns = torch.arange(self.drawn, self.drawn + len(z)) % len(self.palette)
        self.drawn += len(z)
        return self.palette[turns] + self.spread * z

    def synthesis(self, w_plus: Tensor, noise_mode: str) -> Tensor:
        assert noise_mode == "const" and not torch.is_grad_enabled()
        assert w_plus.shape[1:] == (self.n_latent, self.style_dim)
        assert torch.equal(w_plus, w_plus[:, :1].expand_as(w_plus))
        return repeat(w_plus[:, 0], "b c -> b c h w", h=4, w=4)


class MeanColour(nn.Module):
    """A stand-in judge: logits "b 4" = gain * (mean colour - centre) for fire, rain and water
    (red, green, blue); wind's logit is -100, so no image is wind."""

    def __init__(self, gain: float = 1.0, centre: tuple[float, ...] = (0.0, 0.0, 0.0)) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 4)
        with torch.no_grad():
            self.linear.weight.copy_(gain * torch.eye(4, 3))
            self.linear.bias.copy_(-gain * torch.tensor([*centre, 100 / gain]))

    def forward(self, frames: Tensor) -> Tensor:
        return self.linear(frames.mean(dim=(2, 3)))


def test_shares_of_a_prior_whose_scenes_are_known() -> None:
    coverage = prior_coverage(TakingTurns(), MeanColour(), CATEGORIES, samples=10, batch_size=3)
    assert coverage == {
        "confident": 0.6,
        "per_category": {"fire": 0.4, "rain": 0.2, "water": 0.0, "wind": 0.0},
        "missing": ["water", "wind"],
        "samples": 10,
        "threshold": 0.8,
    }
    assert prior_coverage_text(coverage) == (
        "10 random samples of the prior: 60.0% confidently one scene (judge probability >= 0.8);"
        " per scene: fire 40.0%, rain 20.0%, water 0.0%, wind 0.0%; missing: water, wind."
    )
    # the unsure images have top probability 4 / 6: confident at that threshold (>=), not above
    unsure = MeanColour()(torch.tensor(PALETTE[3]).view(1, 3, 1, 1)).softmax(dim=1).max()
    assert unsure.item() == pytest.approx(4 / 6)
    at = prior_coverage(TakingTurns(), MeanColour(), CATEGORIES, 10, threshold=unsure.item())
    assert at["confident"] == 1.0 and at["missing"] == ["wind"]
    assert at["per_category"] == {"fire": 0.4, "rain": 0.4, "water": 0.2, "wind": 0.0}
    above = prior_coverage(TakingTurns(), MeanColour(), CATEGORIES, 10, threshold=0.7)
    assert above == coverage | {"threshold": 0.7}
    with pytest.raises(ValueError, match="at least 1 sample"):
        prior_coverage(TakingTurns(), MeanColour(), CATEGORIES, samples=0)


def test_the_result_depends_on_the_seed_alone() -> None:
    judge = MeanColour()

    def coverage(seed: int = 0, batch_size: int = 16) -> dict:
        prior = TakingTurns(spread=2.0)
        return prior_coverage(prior, judge, CATEGORIES, 50, seed=seed, batch_size=batch_size)

    first = coverage()
    assert 0 < first["confident"] < 1
    assert [coverage(batch_size=b) for b in (1, 7, 50, 64)] == [first] * 4
    assert coverage(seed=1) != first
    torch.manual_seed(123)  # torch's global RNG is neither read nor advanced
    assert coverage() == first
    assert torch.equal(torch.get_rng_state(), torch.manual_seed(123).get_state())


def test_it_measures_what_the_ad_hoc_script_did() -> None:
    """The issue-15 script, verbatim, on a tiny StyleGAN2 and a judge of its mean colours."""
    generator, _ = make_tiny_models()
    judge = MeanColour(gain=10.0, centre=(0.94, -0.42, -0.31))
    coverage = prior_coverage(generator, judge, CATEGORIES, batch_size=128)

    torch.manual_seed(0)
    g = generator
    with torch.no_grad():
        z = torch.randn(500, g.style_dim)
        w = g.mapping(z)
        imgs = g.synthesis(w[:, None].expand(-1, g.n_latent, -1), "const")
        p = judge(imgs).softmax(-1)
    conf, cls = p.max(-1)
    assert coverage["confident"] == pytest.approx((conf >= 0.8).float().mean().item())
    assert 0.5 < coverage["confident"] < 0.95
    for k, name in enumerate(CATEGORIES):
        share = ((cls == k) & (conf >= 0.8)).float().mean().item()
        assert coverage["per_category"][name] == pytest.approx(share)
    assert coverage["missing"] == ["wind"]
