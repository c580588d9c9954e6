"""SoundInversionEncoder: shapes, style groups, zero start, loading a stage-1 checkpoint."""

from __future__ import annotations

import pytest
import torch

from sgvideo.models.inversion_encoder import (
    ENCODER_CONFIG_KEY,
    SoundInversionEncoder,
    load_inversion_encoder,
)

TINY = dict(n_latent=8, style_dim=32, n_mels=32, channels=(8, 16, 32), blocks_per_stage=1)


@pytest.fixture
def encoder() -> SoundInversionEncoder:
    torch.manual_seed(2)
    encoder = SoundInversionEncoder(**TINY)
    for head in encoder.heads:  # leave the zero start so that every head's output moves
        torch.nn.init.normal_(head.linear.weight, std=0.1)
    return encoder


def test_starts_at_zero_offset():
    out = SoundInversionEncoder(**TINY)(torch.rand(3, 32, 21))
    assert out.shape == (3, 8, 32)
    assert torch.equal(out, torch.zeros_like(out))


def test_paper_size_has_one_head_per_layer():
    encoder = SoundInversionEncoder(n_latent=14, channels=(8, 16, 32), blocks_per_stage=1)
    assert len(encoder.heads) == 14
    assert encoder(torch.rand(1, 128, 29)).shape == (1, 14, 512)


def test_pyramid_levels(encoder):
    maps = encoder.pyramid(torch.rand(2, 32, 21))
    assert {k: tuple(v.shape) for k, v in maps.items()} == {
        "coarse": (2, 32, 4, 3),
        "mid": (2, 32, 8, 6),
        "fine": (2, 32, 16, 11),
    }


@pytest.mark.parametrize(
    "group, layers", [("coarse", [0, 1, 2]), ("mid", [3, 4, 5]), ("fine", [6, 7])]
)
def test_each_group_reads_its_own_pyramid_level(encoder, group, layers, monkeypatch):
    """Changing one level's features moves exactly that group's W+ layers (8 layers: 3/3/2)."""
    mel = torch.rand(2, 32, 21)
    maps = encoder.pyramid(mel)
    base = encoder(mel)
    changed = dict(maps)
    changed[group] = maps[group] + 1.0
    monkeypatch.setattr(encoder, "pyramid", lambda _: changed)
    moved = (encoder(mel) - base).abs().amax(dim=(0, 2)) > 0
    assert moved.nonzero().flatten().tolist() == layers


def test_gradients_reach_every_parameter(encoder):
    encoder(torch.rand(2, 32, 21)).square().sum().backward()
    missing = [
        n for n, p in encoder.named_parameters() if p.grad is None or p.grad.abs().sum() == 0
    ]
    assert missing == []


def test_rejects_wrong_mel_size(encoder):
    with pytest.raises(ValueError, match="mel must be 'b 32 time'"):
        encoder(torch.rand(2, 64, 21))
    with pytest.raises(ValueError, match="three positive widths"):
        SoundInversionEncoder(8, channels=(8, 16))


def test_config_rebuilds_the_architecture(encoder):
    rebuilt = SoundInversionEncoder(**encoder.config)
    shapes = {k: v.shape for k, v in encoder.state_dict().items()}
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == shapes


def _save(path, encoder, stage="inversion", config=True, hparams=None):
    checkpoint = {
        "state_dict": {f"encoder.{k}": v for k, v in encoder.state_dict().items()},
        "sgvideo_stage": stage,
        "hyper_parameters": hparams or {"n_mels": 32},
    }
    if config:
        checkpoint[ENCODER_CONFIG_KEY] = encoder.config
    torch.save(checkpoint, path)
    return path


def test_load_round_trip(encoder, tmp_path):
    path = _save(tmp_path / "inversion.ckpt", encoder, hparams={"n_mels": 32, "sample_rate": 16000})
    loaded, hparams = load_inversion_encoder(path)
    assert hparams == {"n_mels": 32, "sample_rate": 16000}
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    mel = torch.rand(2, 32, 21)
    torch.testing.assert_close(loaded(mel), encoder(mel))


def test_load_errors(encoder, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"inversion checkpoint not found: .*none\.ckpt"):
        load_inversion_encoder(tmp_path / "none.ckpt")
    with pytest.raises(
        ValueError, match=("checkpoint of stage 'align', expected a 'inversion' checkpoint")
    ):
        load_inversion_encoder(_save(tmp_path / "a.ckpt", encoder, stage="align"))
    with pytest.raises(ValueError, match="no encoder configuration"):
        load_inversion_encoder(_save(tmp_path / "b.ckpt", encoder, config=False))
    other = SoundInversionEncoder(**(TINY | {"channels": (8, 16, 16)}))
    path = _save(tmp_path / "c.ckpt", other)
    checkpoint = torch.load(path, weights_only=True)
    checkpoint[ENCODER_CONFIG_KEY] = encoder.config
    torch.save(checkpoint, path)
    with pytest.raises(ValueError, match="encoder weights do not match"):
        load_inversion_encoder(path)
