"""StyleGAN2 generator / discriminator: rosinality format, modconv forms, precision, loading."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from einops import repeat

from sgvideo.checkpoints.stylegan2 import (
    load_discriminator,
    load_generator,
    save_rosinality_checkpoint,
)
from sgvideo.models.stylegan2 import Discriminator, Generator, channel_table
from sgvideo.models.stylegan2_layers import ModulatedConv2d, ToRGB, make_kernel
from tests.fixtures.models import TINY_DISCRIMINATOR, TINY_GENERATOR, make_tiny_models

# rosinality's state-dict keys and shapes at 256 px (copies of the design's formats/ listings)
FORMATS = Path(__file__).parent / "data"


def read_format(name: str) -> list[tuple[str, tuple[int, ...]]]:
    path = FORMATS / name
    rows = [line.split("\t") for line in path.read_text().splitlines() if not line.startswith("#")]
    return [
        (key, tuple(int(d) for d in shape.strip("()").split(",") if d.strip()))
        for key, shape in rows
    ]


def layout(module: torch.nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in module.state_dict().items()]


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR for images in [-1, 1] (peak-to-peak 2)."""
    return 10 * math.log10(4 / F.mse_loss(a, b).item())


def w_plus(generator: Generator, batch: int, seed: int = 1) -> torch.Tensor:
    z = torch.randn(batch, generator.style_dim, generator=torch.Generator().manual_seed(seed))
    z = z.to(generator.input.input.dtype)
    return repeat(generator.mapping(z), "b d -> b n d", n=generator.n_latent).detach()


@pytest.fixture(scope="module")
def tiny() -> Generator:
    return make_tiny_models()[0].eval()


# ----------------------------------------------------------------------------- architecture


def test_256px_state_dicts_match_the_rosinality_listings() -> None:
    generator = Generator(256)
    assert layout(generator) == read_format("stylegan2_generator_256.tsv")
    assert sum(p.numel() for p in generator.parameters()) == 30_034_338
    assert layout(Discriminator(256)) == read_format("stylegan2_discriminator_256.tsv")
    assert "w_avg" not in generator.state_dict()


@pytest.mark.parametrize("size", [8, 32, 256, 1024])
def test_n_latent_and_noise_buffers_follow_the_resolution(size: int) -> None:
    log_size = int(math.log2(size))
    expected_latent = 2 * log_size - 2
    assert channel_table(size)[size] > 0
    if size <= 32:
        generator = Generator(size, style_dim=8, n_mlp=1, channel_max=8)
        assert generator.n_latent == expected_latent
        sides = [
            getattr(generator.noises, f"noise_{i}").shape[-1] for i in range(expected_latent - 1)
        ]
        assert sides == [4] + [2**r for r in range(3, log_size + 1) for _ in range(2)]


def test_channel_table_and_channel_max_capping() -> None:
    assert channel_table(1024) == {
        4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128, 512: 64, 1024: 32
    }  # fmt: skip
    assert channel_table(256, channel_multiplier=1, channel_max=96) == {
        4: 96, 8: 96, 16: 96, 32: 96, 64: 96, 128: 96, 256: 64
    }  # fmt: skip
    generator = Generator(64, style_dim=8, n_mlp=1, channel_multiplier=4, channel_max=48)
    assert generator.input.input.shape[1] == 48
    assert all(conv.conv.weight.shape[1] <= 48 for conv in generator.convs)
    with pytest.raises(ValueError, match="power of two from 8 to 1024"):
        Generator(48)


def test_bad_arguments_are_rejected(tiny: Generator) -> None:
    with pytest.raises(ValueError, match=r"w_plus must be \(batch, 8, 32\), got \(2, 7, 32\)"):
        tiny.synthesis(torch.zeros(2, 7, 32))
    with pytest.raises(ValueError, match="z must be"):
        tiny.mapping(torch.zeros(2, 31))
    with pytest.raises(ValueError, match="noise_mode must be one of"):
        tiny.synthesis(torch.zeros(1, 8, 32), noise_mode="fixed")
    with pytest.raises(ValueError, match="modconv must be one of"):
        tiny.modconv = "grouped"
    with pytest.raises(ValueError, match="precision must be one of"):
        tiny.precision = "fp16"


# ----------------------------------------------------------------------------- generator


def test_mapping_and_synthesis_shapes_and_ranges(tiny: Generator) -> None:
    with torch.no_grad():
        z = torch.randn(3, 32)
        w = tiny.mapping(z)
        images = tiny.synthesis(repeat(w, "b d -> b n d", n=8))
        assert w.shape == (3, 32) and images.shape == (3, 3, 32, 32)
        assert images.dtype == torch.float32 and images.isfinite().all()
        assert 0.1 < images.std() < 3 and images.abs().max() < 10
        assert tiny.mean_latent(64).shape == (1, 32)
        torch.testing.assert_close(tiny(z), images)
        # truncation 0 collapses every z onto w_avg
        tiny.w_avg.copy_(w[0])
        collapsed = tiny(torch.randn(2, 32), truncation=0.0)
        torch.testing.assert_close(collapsed, images[:1].expand(2, -1, -1, -1))
        tiny.w_avg.zero_()


def test_noise_modes(tiny: Generator) -> None:
    w = w_plus(tiny, 2)
    with torch.no_grad():
        const = tiny.synthesis(w, noise_mode="const")
        assert torch.equal(const, tiny.synthesis(w))  # const is the default and repeatable
        random = tiny.synthesis(w, noise_mode="random")
        assert not torch.allclose(random, tiny.synthesis(w, noise_mode="random"))
        none = tiny.synthesis(w, noise_mode="none")
        assert not torch.allclose(none, const)
        stored = tiny.noises.noise_3.clone()
        tiny.noises.noise_3.zero_()
        zero_noise = tiny.synthesis(w, noise_mode="const")
        tiny.noises.noise_3.copy_(stored)
        assert not torch.allclose(zero_noise, const)  # the buffers are what const mode uses


def test_fused_and_nonfused_synthesis_agree(tiny: Generator) -> None:
    generator = make_tiny_models()[0].double()
    w = w_plus(generator, 3)
    with torch.no_grad():
        generator.modconv = "fused"
        fused = generator.synthesis(w)
        generator.modconv = "nonfused"
        nonfused = generator.synthesis(w)
    torch.testing.assert_close(nonfused, fused, rtol=0, atol=1e-10)
    # float32, batch 1 and 4, both memory layouts, through the automatic choice as well
    for batch in (1, 4):
        w32 = w_plus(tiny, batch)
        results = {}
        with torch.no_grad():
            for mode, channels_last in (
                ("fused", False),
                ("fused", True),
                ("nonfused", False),
                ("auto", True),
            ):
                tiny.modconv, tiny.channels_last = mode, channels_last
                results[mode, channels_last] = tiny.synthesis(w32)
        tiny.modconv, tiny.channels_last = "auto", True
        reference = results["fused", False]  # rosinality's form and layout
        for images in results.values():
            torch.testing.assert_close(images, reference, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("device", "batch", "fused"),
    [("cpu", 1, False), ("cpu", 8, False), ("meta", 1, True), ("meta", 8, False)],
)
def test_automatic_modconv_form_is_fused_only_for_one_image_on_an_accelerator(
    device: str, batch: int, fused: bool
) -> None:
    layer = ModulatedConv2d(4, 4, 3, 4)
    assert layer.uses_fused(torch.empty(batch, 4, 8, 8, device=device)) is fused
    layer.mode = "fused"
    assert layer.uses_fused(torch.empty(batch, 4, 8, 8, device=device))


@pytest.mark.parametrize("upsample", [False, True])
@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv_matches_the_direct_formula(upsample: bool, demodulate: bool) -> None:
    """Reference: weight * style, demodulate, per-sample conv (transposed conv via zero
    insertion + flipped kernel), then the 4x4 [1,3,3,1] blur written as an explicit filter."""
    layer = ModulatedConv2d(6, 5, 3, 4, demodulate=demodulate, upsample=upsample).double()
    x, w = torch.randn(3, 6, 5, 5).double(), torch.randn(3, 4).double()
    style = F.linear(w, layer.modulation.weight / 2) + layer.modulation.bias  # scale 1/sqrt(4)
    expected = []
    for b in range(3):
        weight = layer.weight[0] / math.sqrt(6 * 9) * style[b][None, :, None, None]
        if demodulate:
            weight = weight / weight.square().sum([1, 2, 3], keepdim=True).add(1e-8).sqrt()
        if upsample:
            sparse = torch.zeros(1, 6, 9, 9).double()
            sparse[..., ::2, ::2] = x[b]
            out = F.conv2d(F.pad(sparse, (2, 2, 2, 2)), weight.flip(2, 3))  # 11 x 11
            blur = (4 * make_kernel((1, 3, 3, 1))).double().expand(5, 1, 4, 4)
            out = F.conv2d(F.pad(out, (1, 1, 1, 1)), blur, groups=5)  # 10 x 10
        else:
            out = F.conv2d(x[b : b + 1], weight, padding=1)
        expected.append(out)
    expected = torch.cat(expected)
    for mode in ("fused", "nonfused"):
        layer.mode = mode
        torch.testing.assert_close(layer(x, w), expected, rtol=1e-10, atol=1e-10)


def test_to_rgb_adds_the_upsampled_skip() -> None:
    """rosinality's ToRGB: 1x1 modulated conv (no demodulation) + bias + the previous RGB,
    upsampled by zero insertion and the [1,3,3,1] filter padded (2, 1)."""
    to_rgb = ToRGB(4, 8).double()
    with torch.no_grad():
        to_rgb.bias.normal_()
    x, w, skip = (
        torch.randn(2, 4, 6, 6).double(),
        torch.randn(2, 8).double(),
        torch.randn(2, 3, 3, 3),
    )
    style = F.linear(w, to_rgb.conv.modulation.weight / math.sqrt(8)) + to_rgb.conv.modulation.bias
    rgb = torch.einsum("oi,bi,bihw->bohw", to_rgb.conv.weight[0, :, :, 0, 0] / 2, style, x)
    sparse = torch.zeros(2, 3, 6, 6).double()
    sparse[..., ::2, ::2] = skip.double()
    blur = (4 * make_kernel((1, 3, 3, 1))).double().expand(3, 1, 4, 4)
    upsampled = F.conv2d(F.pad(sparse, (2, 1, 2, 1)), blur, groups=3)
    expected = rgb + to_rgb.bias + upsampled
    torch.testing.assert_close(to_rgb(x, w, skip.double()), expected, rtol=1e-10, atol=1e-10)


def test_bf16_synthesis_is_close_to_fp32(tiny: Generator) -> None:
    w = w_plus(tiny, 2)
    with torch.no_grad():
        reference = tiny.synthesis(w)
        tiny.precision = "bf16"
        for mode in ("fused", "nonfused"):
            tiny.modconv = mode
            images = tiny.synthesis(w)
            assert images.dtype == torch.float32
            assert psnr(images, reference) >= 35
        tiny.precision, tiny.modconv = "fp32", "auto"


@pytest.mark.parametrize("mode", ["fused", "nonfused"])
def test_gradients_reach_every_w_plus_layer(mode: str) -> None:
    generator = make_tiny_models()[0].requires_grad_(False)
    generator.modconv = mode
    w = w_plus(generator, 2).requires_grad_()
    images = generator.synthesis(w)
    images.square().mean().backward()
    assert w.grad is not None and w.grad.isfinite().all()
    with torch.no_grad():  # the no-grad path computes in place: same images
        torch.testing.assert_close(generator.synthesis(w), images, rtol=0, atol=1e-6)
    assert (w.grad.abs().sum(dim=(0, 2)) > 0).all()  # each of the n_latent layers matters


def test_double_backward_for_r1_and_path_length_penalties() -> None:
    generator, discriminator = make_tiny_models()
    generator.modconv = "nonfused"
    real = torch.randn(4, 3, 32, 32, requires_grad=True)
    (grad_real,) = torch.autograd.grad(discriminator(real).sum(), real, create_graph=True)
    grad_real.square().sum().backward()
    d_grads = [p.grad for p in discriminator.parameters() if p.grad is not None]
    assert d_grads and all(g.isfinite().all() for g in d_grads)
    assert discriminator.convs[0][0].weight.grad.abs().sum() > 0

    w = w_plus(generator, 2).requires_grad_()
    images = generator.synthesis(w, noise_mode="random")
    noise = torch.randn_like(images) / math.sqrt(32 * 32)
    (grad_w,) = torch.autograd.grad((images * noise).sum(), w, create_graph=True)
    grad_w.square().sum(2).mean(1).sqrt().mean().backward()
    assert generator.convs[3].conv.weight.grad.abs().sum() > 0
    assert generator.convs[3].conv.modulation.weight.grad.abs().sum() > 0


# ----------------------------------------------------------------------------- discriminator


def test_discriminator_scores_and_batch_rules() -> None:
    discriminator = Discriminator(**TINY_DISCRIMINATOR)
    assert discriminator(torch.randn(4, 3, 32, 32)).shape == (4, 1)
    assert discriminator(torch.randn(3, 3, 32, 32)).shape == (3, 1)
    with pytest.raises(ValueError, match="batch size 6 must be divisible by 4"):
        discriminator(torch.randn(6, 3, 32, 32))
    with pytest.raises(ValueError, match=r"images must be \(batch, 3, 32, 32\)"):
        discriminator(torch.randn(4, 3, 64, 64))


def test_minibatch_stddev_groups_follow_the_group_size() -> None:
    x = torch.randn(8, 4, 2, 2)
    whole = Discriminator(**TINY_DISCRIMINATOR, stddev_group=8)._minibatch_stddev(x)
    expected = x.std(dim=0, correction=0).mean()  # one map: the std over the whole batch
    torch.testing.assert_close(whole, expected.expand(8, 1, 2, 2), rtol=1e-5, atol=1e-6)
    pairs = Discriminator(**TINY_DISCRIMINATOR, stddev_group=4)._minibatch_stddev(x)
    # rosinality's grouping: sample i shares its map with i + 2, i + 4, i + 6
    torch.testing.assert_close(pairs[0], pairs[2])
    assert not torch.allclose(pairs[0], pairs[1])
    torch.testing.assert_close(pairs[1, 0, 0, 0], x[1::2].std(dim=0, correction=0).mean())
    with pytest.raises(ValueError, match="stddev_group must be at least 1"):
        Discriminator(**TINY_DISCRIMINATOR, stddev_group=0)


# ----------------------------------------------------------------------------- checkpoints


def test_fixture_checkpoint_round_trip(tiny_generator_path: Path, tiny: Generator) -> None:
    checkpoint = torch.load(tiny_generator_path, weights_only=True)
    assert set(checkpoint) == {"g_ema", "g", "d", "latent_avg", "args"}
    assert checkpoint["args"] == TINY_GENERATOR
    generator = load_generator(tiny_generator_path)
    assert not generator.training
    assert not any(p.requires_grad for p in generator.parameters())
    assert generator.config() == TINY_GENERATOR and generator.n_latent == 8
    torch.testing.assert_close(generator.w_avg, checkpoint["latent_avg"], rtol=0, atol=0)
    w = w_plus(tiny, 2)
    with torch.no_grad():
        assert torch.equal(generator.synthesis(w), tiny.synthesis(w))

    discriminator = load_discriminator(tiny_generator_path)
    reference = make_tiny_models()[1]
    images = torch.randn(4, 3, 32, 32)
    assert torch.equal(discriminator(images), reference(images))
    assert discriminator.config() == TINY_DISCRIMINATOR


def test_missing_latent_avg_is_computed_and_args_namespace_is_accepted(tmp_path: Path) -> None:
    """rosinality's train.py stores `args` as an argparse.Namespace and no latent_avg."""
    generator, discriminator = make_tiny_models()
    path = save_rosinality_checkpoint(tmp_path / "g.pt", g_ema=generator, d=discriminator)
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["args"] = argparse.Namespace(size=32, latent=32, channel_multiplier=1, lr=0.002)
    checkpoint["g_optim"] = {"state": {}, "param_groups": [{"lr": 0.002, "params": [0]}]}
    torch.save(checkpoint, path)
    first, second = load_generator(path), load_generator(path)
    torch.testing.assert_close(first.w_avg, second.w_avg, rtol=0, atol=0)
    expected = generator.mean_latent(4096, generator=torch.Generator().manual_seed(0))[0]
    torch.testing.assert_close(first.w_avg, expected)
    assert first.channel_multiplier == 1  # ambiguous from shapes at 32 px: taken from args


@pytest.mark.parametrize("lr_mlp", [0.01, 1.0, 10.0])
def test_a_generator_trained_with_another_mapping_lr_exports_the_same_function(
    tmp_path: Path, lr_mlp: float
) -> None:
    """Checkpoints hold the mapping in rosinality's lr_mlp (0.01) convention: loaded with it,
    a generator trained with lr_mlp 1.0 or 10 (the demo's) maps z to the same w and draws the same
    images."""
    torch.manual_seed(0)
    generator = Generator(
        32, style_dim=16, n_mlp=2, channel_multiplier=1, channel_max=16, lr_mlp=lr_mlp
    )
    with torch.no_grad():
        for p in generator.style.parameters():
            p.add_(0.3 * torch.randn_like(p))  # as if trained: biases away from zero
    path = save_rosinality_checkpoint(tmp_path / "g.pt", g_ema=generator, g=generator)
    loaded = load_generator(path)
    assert loaded.style[1].lr_mul == 0.01
    z = torch.randn(6, 16)
    with torch.no_grad():
        w = generator.mapping(z)
        torch.testing.assert_close(loaded.mapping(z), w)
        latents = w[:, None].expand(-1, generator.n_latent, -1)
        torch.testing.assert_close(
            loaded.synthesis(latents, "const"), generator.synthesis(latents, "const")
        )
    stored = torch.load(path, weights_only=True)
    torch.testing.assert_close(
        stored["g"]["style.1.weight"], generator.style[1].weight.detach() * lr_mlp / 0.01
    )


def test_architecture_is_inferred_from_the_tensors(tmp_path: Path) -> None:
    config = {"size": 256, "style_dim": 8, "n_mlp": 3, "channel_multiplier": 1, "channel_max": 96}
    generator = Generator(**config)
    path = save_rosinality_checkpoint(tmp_path / "g.pt", g_ema=generator)
    checkpoint = torch.load(path, weights_only=True)
    del checkpoint["args"]
    torch.save(checkpoint, path)
    loaded = load_generator(path, size=256)
    assert loaded.config() == config
    assert layout(loaded) == layout(generator)


def test_missing_checkpoint_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "stylegan2.pt"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        load_generator(missing)
    with pytest.raises(FileNotFoundError, match="discriminator"):
        load_discriminator(missing)


def _corrupt(tiny_generator_path: Path, tmp_path: Path, edit) -> Path:
    checkpoint = torch.load(tiny_generator_path, weights_only=True)
    edit(checkpoint)
    path = tmp_path / "edited.pt"
    torch.save(checkpoint, path)
    return path


def test_wrong_checkpoints_are_rejected_with_clear_messages(
    tiny_generator_path: Path, tmp_path: Path
) -> None:
    def reshape(ckpt):
        ckpt["g_ema"]["convs.1.conv.weight"] = torch.zeros(1, 32, 16, 3, 3)

    path = _corrupt(tiny_generator_path, tmp_path, reshape)
    message = r"convs.1.conv.weight: expected \(1, 32, 32, 3, 3\), found \(1, 32, 16, 3, 3\)"
    with pytest.raises(ValueError, match=message):
        load_generator(path)

    def drop_and_add(ckpt):
        del ckpt["g_ema"]["convs.2.noise.weight"]
        ckpt["g_ema"]["convs.2.bias"] = torch.zeros(32)

    path = _corrupt(tiny_generator_path, tmp_path, drop_and_add)
    with pytest.raises(ValueError, match=r"1 missing keys \(e.g. \['convs.2.noise.weight'\]\)"):
        load_generator(path)
    with pytest.raises(ValueError, match=r"1 unexpected keys \(e.g. \['convs.2.bias'\]\)"):
        load_generator(path)

    with pytest.raises(ValueError, match="expected a 256 px model, the checkpoint is 32 px"):
        load_generator(tiny_generator_path, size=256)
    with pytest.raises(ValueError, match="expected a 64 px model"):
        load_discriminator(tiny_generator_path, size=64)


def test_foreign_checkpoints_are_rejected(tmp_path: Path) -> None:
    bare = tmp_path / "bare.pt"
    torch.save(make_tiny_models()[0].state_dict(), bare)
    with pytest.raises(ValueError, match=r"no 'g_ema' state dict.*bare state dict"):
        load_generator(bare)
    with pytest.raises(ValueError, match="no 'd' state dict"):
        load_discriminator(bare)

    foreign = tmp_path / "foreign.pt"
    torch.save({"g_ema": torch.nn.Linear(4, 4).state_dict()}, foreign)
    with pytest.raises(ValueError, match=r"expected a 2-d tensor 'style.1.weight', found nothing"):
        load_generator(foreign)

    garbage = tmp_path / "network-snapshot.pkl"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(
        ValueError, match="(?s)cannot read .* as a PyTorch checkpoint.*convert_weight"
    ):
        load_generator(garbage)
