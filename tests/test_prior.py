"""StyleGAN2 prior: GAN losses and regularisers, EMA, style mixing, export, a short fit."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import lightning as L
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from sgvideo import cli
from sgvideo.checkpoints import read_stage_checkpoint
from sgvideo.checkpoints.stylegan2 import load_generator
from sgvideo.data.images import (
    ImageFolderDataModule,
    images_from_batch,
)
from sgvideo.lit.prior import StyleGAN2Prior
from sgvideo.losses_gan import (
    d_logistic_loss,
    ema_beta,
    ema_update,
    g_nonsaturating_loss,
    lazy_adam_hparams,
    mix_styles,
    path_length_penalty,
    r1_penalty,
    sample_w_plus,
)
from sgvideo.models.stylegan2 import Discriminator, Generator

DEMO_CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "demo"
TINY = dict(size=32, style_dim=32, n_mlp=2, channel_multiplier=1, channel_max=32)


def tiny_generator() -> Generator:
    return Generator(32, style_dim=32, n_mlp=2, channel_multiplier=1, channel_max=32)


def directional_check(fn, params: list[torch.Tensor], eps: float = 1e-8) -> None:
    """Autograd's directional derivative of fn() along a random direction == central difference.

    A small step in float64: leaky ReLUs are piecewise linear, so a large step can cross a kink
    where the input gradient jumps.
    """
    grads = torch.autograd.grad(fn(), params, allow_unused=True, materialize_grads=True)
    direction = [torch.randn_like(p) for p in params]
    analytic = sum((g * v).sum() for g, v in zip(grads, direction, strict=True))

    def shifted(scale: float) -> torch.Tensor:
        with torch.no_grad():
            for p, v in zip(params, direction, strict=True):
                p.add_(scale * v)
        value = fn().detach()
        with torch.no_grad():
            for p, v in zip(params, direction, strict=True):
                p.sub_(scale * v)
        return value

    numeric = (shifted(eps) - shifted(-eps)) / (2 * eps)
    assert analytic.abs() > 1e-8
    torch.testing.assert_close(analytic, numeric, rtol=1e-4, atol=1e-9)


def test_logistic_losses_match_their_formulas() -> None:
    real, fake = torch.tensor([[2.0], [-1.0]]), torch.tensor([[0.5], [-3.0]])
    softplus = lambda x: torch.log1p(torch.exp(x))
    expected_d = softplus(-real).mean() + softplus(fake).mean()
    torch.testing.assert_close(d_logistic_loss(real, fake), expected_d)
    torch.testing.assert_close(g_nonsaturating_loss(fake), softplus(-fake).mean())
    at_zero = d_logistic_loss(torch.zeros(3, 1), torch.zeros(3, 1))
    torch.testing.assert_close(at_zero, torch.tensor(2 * math.log(2)))


def test_r1_penalty_of_a_linear_critic_is_its_squared_weight_norm() -> None:
    a = torch.randn(3, 4, 4, requires_grad=True)
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    r1 = r1_penalty((x * a).sum(dim=(1, 2, 3)), x)
    torch.testing.assert_close(r1, a.detach().square().sum())
    (grad_a,) = torch.autograd.grad(r1, a)
    torch.testing.assert_close(grad_a, 2 * a.detach())


def test_r1_penalty_needs_images_that_require_grad() -> None:
    with pytest.raises(ValueError, match="requires_grad=True"):
        r1_penalty(torch.zeros(2, 1), torch.zeros(2, 3, 4, 4))


def test_r1_penalty_double_backward_through_the_discriminator() -> None:
    d = Discriminator(32, channel_multiplier=1, channel_max=16).double()
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)

    def penalty() -> torch.Tensor:
        real = x.clone().requires_grad_(True)
        return r1_penalty(d(real), real)

    weights = [p for p in d.parameters() if p.ndim > 1]
    grads = torch.autograd.grad(penalty(), weights)
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)
    directional_check(penalty, weights)


def test_path_length_penalty_double_backward_through_the_generator() -> None:
    g = tiny_generator().double()
    z = torch.randn(2, 32, dtype=torch.float64)
    mean = torch.tensor(0.3, dtype=torch.float64)

    def penalty_and_lengths() -> tuple[torch.Tensor, ...]:
        torch.manual_seed(7)  # the same projection noise for every call
        w_plus = g.mapping(z)[:, None].expand(-1, g.n_latent, -1)
        images = g.synthesis(w_plus, noise_mode="const")
        return path_length_penalty(images, w_plus, mean, decay=0.1)

    penalty, new_mean, lengths = penalty_and_lengths()
    assert lengths.shape == (2,) and (lengths > 0).all()
    torch.testing.assert_close(new_mean, mean + 0.1 * (lengths.detach().mean() - mean))
    assert not new_mean.requires_grad
    torch.testing.assert_close(penalty, (lengths - new_mean).square().mean())
    synthesis_params = [p for n, p in g.named_parameters() if not n.startswith("style")]
    grads = torch.autograd.grad(penalty, synthesis_params, allow_unused=True)
    assert sum(gr.abs().sum() for gr in grads if gr is not None) > 0
    directional_check(lambda: penalty_and_lengths()[0], list(g.parameters()))


def test_ema_update_is_exact_and_copies_buffers() -> None:
    target, source = nn.BatchNorm1d(4).double(), nn.BatchNorm1d(4).double()
    with torch.no_grad():
        for p in (*target.parameters(), *source.parameters()):
            p.copy_(torch.randn_like(p))
    source.running_mean.fill_(3.0)
    before = [p.detach().clone() for p in target.parameters()]
    ema_update(target, source, beta=0.9)
    for old, new, src in zip(before, target.parameters(), source.parameters(), strict=True):
        torch.testing.assert_close(new, 0.9 * old + 0.1 * src, rtol=0, atol=1e-15)
    torch.testing.assert_close(target.running_mean, source.running_mean)


def test_ema_beta_halves_in_half_life_steps_and_ramps_up() -> None:
    assert ema_beta(10.0, step=1000) ** 10 == pytest.approx(0.5)
    assert ema_beta(10.0, step=0, rampup=0.05) == 0.0
    assert ema_beta(10.0, step=40, rampup=0.05) ** 2 == pytest.approx(0.5)
    assert ema_beta(10.0, step=10_000, rampup=0.05) == ema_beta(10.0, step=0)


def test_lazy_adam_hparams_scale_by_every_over_every_plus_one() -> None:
    lr, betas = lazy_adam_hparams(0.002, (0.0, 0.99), every=16)
    c = 16 / 17
    assert lr == pytest.approx(0.002 * c)
    assert betas == pytest.approx((0.0, 0.99**c))


def test_mix_styles_splits_two_latents_at_the_crossover() -> None:
    w1, w2 = torch.randn(3, 8), torch.randn(3, 8)
    mixed = mix_styles(w1, w2, n_latent=6, crossover=2)
    assert mixed.shape == (3, 6, 8)
    torch.testing.assert_close(mixed[:, :2], w1[:, None].expand(-1, 2, -1))
    torch.testing.assert_close(mixed[:, 2:], w2[:, None].expand(-1, 4, -1))
    with pytest.raises(ValueError, match=r"crossover must be in \[1, 5\]"):
        mix_styles(w1, w2, n_latent=6, crossover=6)


def distinct_runs(w_plus: torch.Tensor) -> list[int]:
    """Per sample, the number of runs of equal consecutive layers."""
    changes = (w_plus[:, 1:] != w_plus[:, :-1]).any(dim=2)
    return (changes.sum(dim=1) + 1).tolist()


def test_sample_w_plus_mixes_exactly_two_latents() -> None:
    g = tiny_generator()
    with torch.no_grad():
        mixed = sample_w_plus(g.mapping, 4, g.style_dim, g.n_latent, 1.0, "cpu")
        plain = sample_w_plus(g.mapping, 4, g.style_dim, g.n_latent, 0.0, "cpu")
    assert mixed.shape == plain.shape == (4, g.n_latent, g.style_dim)
    assert distinct_runs(mixed) == [2] * 4
    assert distinct_runs(plain) == [1] * 4
    crossovers = (mixed[:, 1:] != mixed[:, :-1]).any(dim=2).int().argmax(dim=1)
    assert crossovers.unique().numel() == 1  # one crossover for the whole batch


def test_images_from_batch_accepts_images_and_clips() -> None:
    images = torch.rand(2, 3, 8, 8)
    assert images_from_batch(images) is images
    assert images_from_batch((images, torch.zeros(2))) is images
    assert images_from_batch({"image": images}) is images
    # frame value = 10 * clip + t, so picked frames can be traced back to their clip
    frames = (10 * torch.arange(3)[:, None] + torch.arange(4)).float()
    frames = frames[:, :, None, None, None].expand(3, 4, 3, 8, 8).contiguous()
    all_frames = images_from_batch({"frames": frames})
    assert all_frames.shape == (12, 3, 8, 8)
    torch.testing.assert_close(all_frames[5], frames[1, 1])
    picked = images_from_batch({"frames": frames}, frames_per_clip=2)[:, 0, 0, 0]
    assert picked.shape == (6,)
    assert (picked // 10).tolist() == [0, 0, 1, 1, 2, 2]
    assert all(picked[i] != picked[i + 1] for i in (0, 2, 4))


def test_images_from_batch_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="neither 'image' nor 'frames'"):
        images_from_batch({"audio": torch.zeros(2)})
    with pytest.raises(ValueError, match=r"expected images 'b 3 h w', got \(2, 1, 8, 8\)"):
        images_from_batch(torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match=r"frames_per_clip must be in \[1, 4\]"):
        images_from_batch({"frames": torch.zeros(2, 4, 3, 8, 8)}, frames_per_clip=5)


def test_image_folder_datamodule(tmp_path) -> None:
    (tmp_path / "sub").mkdir()
    for i in range(3):
        Image.new("RGB", (48, 40), (255, 0, 0) if i else (0, 0, 255)).save(tmp_path / f"{i}.png")
    Image.new("RGB", (40, 48), (0, 255, 0)).save(tmp_path / "sub" / "x.jpg")
    dm = ImageFolderDataModule(str(tmp_path), image_size=16, batch_size=4, num_workers=0)
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 16, 16)
    assert batch["image"].min() >= -1 and batch["image"].max() <= 1
    reds = (batch["image"][:, 0] > 0.9).flatten(1).all(1).sum()
    assert reds == 2
    with pytest.raises(ValueError, match="fewer than batch_size=8"):
        ImageFolderDataModule(str(tmp_path), batch_size=8).setup()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        ImageFolderDataModule(str(tmp_path / "empty"), batch_size=1).setup()
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        ImageFolderDataModule(str(tmp_path / "missing")).setup()


def test_export_loads_strictly_and_reproduces_g_ema(tmp_path) -> None:
    prior = StyleGAN2Prior(**TINY, sample_count=4)
    with torch.no_grad():
        for p in prior.g_ema.parameters():
            p.add_(0.01 * torch.randn_like(p))  # g_ema must differ from g for the test to mean much
    path = prior.export(tmp_path / "out" / "prior.pt")
    loaded = load_generator(path)
    assert not any(p.requires_grad for p in loaded.parameters())
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    assert set(checkpoint) >= {"g_ema", "g", "d", "latent_avg"}
    torch.testing.assert_close(loaded.w_avg.flatten(), checkpoint["latent_avg"].flatten())
    z = torch.randn(3, 32)
    with torch.no_grad():
        w = prior.g_ema.mapping(z)
        torch.testing.assert_close(loaded.mapping(z), w)
        w_plus = w[:, None].expand(-1, loaded.n_latent, -1)
        expected = prior.g_ema.synthesis(w_plus, noise_mode="const")
        torch.testing.assert_close(loaded.synthesis(w_plus, noise_mode="const"), expected)
        assert not torch.allclose(prior.g.synthesis(w_plus, noise_mode="const"), expected)


def test_wrong_image_size_is_a_clear_error() -> None:
    prior = StyleGAN2Prior(**TINY)
    with pytest.raises(ValueError, match="images are 64x64 .* set the data's image_size to 32"):
        prior._real_images(torch.zeros(2, 3, 64, 64))


def test_minibatch_stddev_group_is_the_discriminators_and_trims_real_batches() -> None:
    prior = StyleGAN2Prior(**TINY, mbstd_group=8)
    assert prior.d.stddev_group == 8
    assert prior._real_images(torch.zeros(12, 3, 32, 32)).shape[0] == 8  # whole groups only
    assert prior._real_images(torch.zeros(6, 3, 32, 32)).shape[0] == 6  # one smaller group
    assert prior.d(torch.zeros(6, 3, 32, 32)).shape == (6, 1)


def test_a_short_fit_trains_all_networks_and_exports(tmp_path) -> None:
    L.seed_everything(0)
    images = torch.rand(8, 3, 32, 32) * 2 - 1
    loader = DataLoader(TensorDataset(images), batch_size=4, shuffle=True)
    prior = StyleGAN2Prior(
        **TINY,
        r1_every=2,
        pl_every=2,
        sample_every=2,
        sample_count=4,
        export_path=str(tmp_path / "ckpt" / "prior.pt"),
        ema_rampup=0.5,
    )
    before = {k: v.detach().clone() for k, v in prior.state_dict().items()}
    trainer = L.Trainer(
        max_steps=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        accelerator="cpu",
    )
    trainer.fit(prior, loader)
    assert trainer.global_step == 3
    after = prior.state_dict()
    for prefix in ("g.", "d.", "g_ema."):
        keys = [k for k in before if k.startswith(prefix)]
        assert any(not torch.equal(before[k], after[k]) for k in keys), prefix
    assert torch.equal(before["sample_z"], after["sample_z"])
    assert after["mean_path_length"] > 0
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == [
        "000000.png",
        "000002.png",
        "final.png",
    ]
    with Image.open(tmp_path / "samples" / "final.png") as grid:
        assert grid.size == (2 * 32 + 3 * 2, 2 * 32 + 3 * 2)
    loaded = load_generator(tmp_path / "ckpt" / "prior.pt")
    with torch.no_grad():
        w_plus = prior.g_ema.mapping(prior.sample_z)[:, None].expand(-1, loaded.n_latent, -1)
        torch.testing.assert_close(loaded.synthesis(w_plus, noise_mode="const"), prior.sample())


def test_demo_config_trains_exports_and_resumes_through_the_cli(
    synth_root, synth_cache, tmp_path
) -> None:
    cache = shutil.copytree(synth_cache, tmp_path / "cache")
    export = tmp_path / "prior.pt"
    args = [
        "prior", "fit", "--config", str(DEMO_CONFIGS / "base.yaml"),
        "--config", str(DEMO_CONFIGS / "prior.yaml"),
        "--data.root", str(synth_root), "--data.cache_dir", str(cache),
        "--data.batch_size", "2", "--model.export_path", str(export),
        "--model.sample_every", "1", "--model.sample_count", "4",
        "--trainer.default_root_dir", str(tmp_path / "run"),
        "--trainer.callbacks.dirpath", str(tmp_path / "ckpt"),
        "--trainer.enable_progress_bar", "false", "--trainer.logger", "false",
    ]  # fmt: skip
    assert cli.main([*args, "--trainer.max_steps", "2"]) == 0
    generator = load_generator(export)
    assert (generator.size, generator.style_dim, generator.n_latent) == (32, 64, 8)
    assert sorted(p.name for p in (tmp_path / "run" / "samples").iterdir()) == [
        "000000.png", "000001.png", "final.png"
    ]  # fmt: skip
    assert cli.main([*args, "--trainer.max_steps", "3", "--ckpt_path", "last"]) == 0
    checkpoint = read_stage_checkpoint(tmp_path / "ckpt" / "last.ckpt", "prior")
    assert checkpoint["global_step"] == 3
    top_level = {k.split(".")[0] for k in checkpoint["state_dict"]}
    assert top_level == {"g", "d", "g_ema", "mean_path_length", "sample_z"}


def _fit_prior(root: Path, max_steps: int, ckpt_path: Path | None = None) -> dict:
    """Fit the tiny prior (2 steps an epoch, shuffled data, random latents and noise) and
    checkpoint every 2 steps; returns the last checkpoint."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from tests.fixtures.stages import quiet_trainer

    L.seed_everything(0, verbose=False)
    images = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    loader = DataLoader(TensorDataset(images), batch_size=4, shuffle=True)
    prior = StyleGAN2Prior(**TINY, r1_every=2, pl_every=2, sample_every=0, sample_count=4)
    saving = ModelCheckpoint(dirpath=root / "checkpoints", save_last=True, every_n_train_steps=2)
    trainer = quiet_trainer(root, max_steps=max_steps, callbacks=[saving])
    trainer.fit(prior, loader, ckpt_path=ckpt_path)
    return torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)


def test_resume_continues_exactly(tmp_path) -> None:
    """Stopped after 2 steps (one epoch) and resumed to 4 == 4 steps in one go: the random
    generators (latents, noise, data order) are restored with the weights and optimisers."""
    whole = _fit_prior(tmp_path / "whole", 4)
    first = _fit_prior(tmp_path / "part", 2)
    assert first["global_step"] == 2 and "sgvideo_rng" in first
    resumed = _fit_prior(tmp_path / "part", 4, tmp_path / "part" / "checkpoints" / "last.ckpt")
    assert resumed["global_step"] == whole["global_step"] == 4
    for key, value in whole["state_dict"].items():
        assert torch.equal(resumed["state_dict"][key], value), key
