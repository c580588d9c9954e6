"""AudioEncoder: shapes, the authors' state-dict layout, loading and its errors."""

from __future__ import annotations

import pytest
import torch
from torchvision.models import resnet18

from sgvideo.models.audio_encoder import AudioEncoder, load_audio_encoder


@pytest.fixture(scope="module")
def encoder() -> AudioEncoder:
    torch.manual_seed(1)
    return AudioEncoder(embed_dim=32).eval()


def test_forward_shapes_and_normalisation(encoder):
    mel = torch.rand(3, 32, 20)
    out = encoder(mel)
    assert out.shape == (3, 32)
    unit = encoder(mel, normalize=True)
    torch.testing.assert_close(unit, out / out.norm(dim=-1, keepdim=True))
    with pytest.raises(ValueError, match="'b n_mels time'"):
        encoder(torch.rand(3, 1, 32, 20))


def test_state_dict_names_follow_the_authors_layout(encoder):
    """conv.* (3x3, 1 -> 3, no padding) then torchvision/timm ResNet-18 under feature_extractor."""
    reference = resnet18(weights=None, num_classes=32).state_dict()
    expected = {"conv.weight": (3, 1, 3, 3), "conv.bias": (3,)}
    expected |= {f"feature_extractor.{k}": tuple(v.shape) for k, v in reference.items()}
    assert {k: tuple(v.shape) for k, v in encoder.state_dict().items()} == expected
    assert encoder.conv.padding == (0, 0)


def test_raw_state_dict_with_dataparallel_prefix_loads(encoder, tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save({f"module.{k}": v for k, v in encoder.state_dict().items()}, path)
    loaded = load_audio_encoder(path)
    assert loaded.embed_dim == 32 and not loaded.training
    assert not any(p.requires_grad for p in loaded.parameters())
    mel = torch.rand(2, 32, 24)
    torch.testing.assert_close(loaded(mel), encoder(mel))


def test_align_checkpoint_loads(encoder, tmp_path):
    state = {f"audio_encoder.{k}": v for k, v in encoder.state_dict().items()}
    state["logit_scale.log_scale"] = torch.tensor(2.0)
    path = tmp_path / "align.ckpt"
    torch.save({"state_dict": state, "sgvideo_stage": "align"}, path)
    mel = torch.rand(2, 32, 24)
    torch.testing.assert_close(load_audio_encoder(path)(mel), encoder(mel))


def test_bad_files_are_clear_errors(encoder, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"audio encoder weights not found: .*nope\.pth"):
        load_audio_encoder(tmp_path / "nope.pth")

    wrong_stage = tmp_path / "inversion.ckpt"
    torch.save({"state_dict": {}, "sgvideo_stage": "inversion"}, wrong_stage)
    with pytest.raises(
        ValueError, match=("checkpoint of stage 'inversion', expected a 'align' checkpoint")
    ):
        load_audio_encoder(wrong_stage)

    state = dict(encoder.state_dict())
    state["conv.weight"] = torch.zeros(2, 1, 3, 3)
    wrong_shape = tmp_path / "wrong_shape.pth"
    torch.save(state, wrong_shape)
    with pytest.raises(
        ValueError, match=r"(?s)does not match AudioEncoder.*size mismatch for conv\.weight"
    ):
        load_audio_encoder(wrong_shape)

    other = tmp_path / "other.pth"
    torch.save({"encoder.weight": torch.zeros(3)}, other)
    with pytest.raises(ValueError, match="holds no AudioEncoder weights"):
        load_audio_encoder(other)
