"""Stage 0 (AudioCLIPAlignment) and the shared contrastive losses, with tiny models."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
from torch.nn import functional as F
from torch.optim.swa_utils import update_bn
from torch.utils.data import DataLoader

from sgvideo.lit.align import AudioCLIPAlignment, augment_waveform
from sgvideo.lit.windows import flatten_windows
from sgvideo.losses import (
    LogitScale,
    class_info_nce,
    class_logits,
    cosine_distance,
    label_targets,
    lsgan_d_loss,
    lsgan_g_loss,
    symmetric_info_nce,
)
from sgvideo.models.audio_encoder import load_audio_encoder
from tests.fixtures.stages import (
    align_module,
    first_batch,
    fit,
    tiny_datamodule,
    train_only_datamodule,
)


@pytest.fixture(scope="module")
def datamodule(synth_root, synth_cache):
    return train_only_datamodule(synth_root, synth_cache)


@pytest.fixture(scope="module")
def batch(datamodule):
    return first_batch(datamodule)


# ---------------------------------------------------------------------------- shared losses


def test_symmetric_info_nce_matches_clip_reference():
    a, b = torch.randn(6, 8), torch.randn(6, 8)
    logits = 10.0 * F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T
    target = torch.arange(6)
    expected = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    torch.testing.assert_close(symmetric_info_nce(a, b, 10.0), expected)


def test_info_nce_labels_make_same_label_pairs_positive():
    a = torch.randn(4, 8)
    labels = torch.tensor([0, 0, 1, 1])
    targets = label_targets(labels, labels)
    torch.testing.assert_close(
        targets, torch.tensor([[0.5, 0.5, 0, 0]] * 2 + [[0, 0, 0.5, 0.5]] * 2)
    )
    # Two identical members per label: the loss is the entropy floor log(2) at a large scale.
    twins = torch.cat([a[:1], a[:1], a[2:3], a[2:3]])
    got = symmetric_info_nce(twins, twins, 1e3, labels=labels)
    torch.testing.assert_close(got, torch.tensor(math.log(2)), atol=1e-4, rtol=0)


def test_class_info_nce_is_the_mean_of_both_directions():
    embeds, classes = torch.randn(5, 8), torch.randn(3, 8)
    labels = torch.tensor([0, 2, 2, 0, 0])
    logits = 5.0 * F.normalize(embeds, dim=-1) @ F.normalize(classes, dim=-1).T
    to_class = F.cross_entropy(logits, labels)
    rows = logits.T[[0, 2]].log_softmax(dim=1)
    from_class = -(rows[0, [0, 3, 4]].mean() + rows[1, [1, 2]].mean()) / 2
    torch.testing.assert_close(
        class_info_nce(embeds, classes, labels, 5.0), (to_class + from_class) / 2
    )


def test_logit_scale_and_simple_losses():
    scale = LogitScale(1 / 0.07)
    torch.testing.assert_close(scale(), torch.tensor(1 / 0.07))
    with torch.no_grad():
        scale.log_scale.fill_(10.0)
    torch.testing.assert_close(scale(), torch.tensor(100.0))
    x = torch.randn(3, 4)
    torch.testing.assert_close(cosine_distance(x, 2 * x), torch.zeros(3), atol=1e-6, rtol=0)
    torch.testing.assert_close(cosine_distance(x, -x), torch.full((3,), 2.0))
    assert lsgan_d_loss(torch.ones(4), torch.zeros(4)) == 0 and lsgan_g_loss(torch.ones(4)) == 0
    torch.testing.assert_close(lsgan_d_loss(torch.zeros(2), torch.ones(2)), torch.tensor(1.0))


def test_augment_waveform():
    wave = torch.randn(3, 1000)
    torch.testing.assert_close(augment_waveform(wave, 0.0, 0.0, (200.0, 200.0)), wave)
    gained = augment_waveform(wave, 6.0, 0.0, (200.0, 200.0))
    ratio = gained / wave
    assert torch.allclose(ratio, ratio[:, :1], rtol=1e-4)  # one gain per window
    assert ((ratio[:, 0] >= 10 ** (-6 / 20) - 1e-6) & (ratio[:, 0] <= 10 ** (6 / 20) + 1e-6)).all()
    shifted = augment_waveform(wave, 0.0, 0.1, (200.0, 200.0))
    for row, original in zip(shifted, wave, strict=True):  # a circular shift of at most 100
        assert any(torch.allclose(row, original.roll(s), atol=1e-6) for s in range(-100, 101))
    noisy = augment_waveform(wave, 0.0, 0.0, (20.0, 20.0))
    snr = 10 * torch.log10(wave.square().mean(1) / (noisy - wave).square().mean(1))
    assert (snr - 20).abs().max() < 1.0


def test_flatten_windows_keeps_each_window_with_its_frame_and_clip():
    ids = (10 * torch.arange(2)[:, None] + torch.arange(3)).float()  # "b t": 10 * clip + window
    batch = {
        "audio": ids[..., None].expand(2, 3, 5),
        "frames": ids[..., None, None, None].expand(2, 3, 3, 4, 4),
        "category": torch.tensor([4, 1]),
    }
    every = flatten_windows(batch)
    assert every.audio[:, 0].tolist() == [0, 1, 2, 10, 11, 12]
    assert every.category.tolist() == [4, 4, 4, 1, 1, 1] and every.clip.tolist() == [
        0,
        0,
        0,
        1,
        1,
        1,
    ]
    some = flatten_windows(batch, 2)
    assert some.audio.shape == (4, 5) and some.frames.shape == (4, 3, 4, 4)
    torch.testing.assert_close(some.frames[:, 0, 0, 0], some.audio[:, 0])
    assert (some.audio[:, 0] // 10).long().tolist() == some.clip.tolist() == [0, 0, 1, 1]
    assert some.category.tolist() == [4, 4, 1, 1]
    assert len(set(some.audio[:, 0].tolist())) == 4  # no window twice
    with pytest.raises(ValueError, match="model and data settings disagree"):
        flatten_windows(batch, window_samples=6)


# ---------------------------------------------------------------------------- the module


def test_forward_losses_and_gradients(datamodule, batch):
    module = align_module(datamodule)
    windows = flatten_windows(batch, 1)
    embeds = module(windows.audio)
    assert embeds.shape == (windows.audio.shape[0], 32)
    torch.testing.assert_close(embeds.norm(dim=-1), torch.ones(embeds.shape[0]))
    module.train()
    losses = module._losses(windows, augment=True)
    assert set(losses) == {"text", "augment", "image", "zero_shot_acc"}
    module._total(losses).backward()
    trained = {n for n, p in module.named_parameters() if p.grad is not None}
    assert trained == {
        n for n, _ in module.named_parameters() if n.startswith(("audio_encoder.", "logit_scale."))
    }
    assert all(not p.requires_grad for p in module.clip.parameters())
    assert not module.clip.training  # frozen modules stay in eval mode


def test_overfits_a_fixed_batch(datamodule, batch):
    """Text + image InfoNCE on one fixed batch halves within 8 AdamW steps."""
    L.seed_everything(0, verbose=False)
    module = align_module(datamodule, augment_weight=0.0, windows_per_clip=1, lr=1e-3).train()
    optimizer = module.configure_optimizers()["optimizer"]
    windows = flatten_windows(batch, 1)
    losses = []
    for _ in range(8):
        loss = module._total(module._losses(windows, augment=True))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 2, losses


def test_zero_shot_accuracy_beats_chance(synth_root, synth_cache, tmp_path):
    """After 12 steps (5 windows of 0.5 s per step), the clips' centre windows are classified
    against the 5 category prompts at 2.5x chance (1 / 5) or better.

    A fresh ResNet moves so fast in 12 steps that batch norm's running statistics lag behind
    (train-mode accuracy is already ~1 while eval mode is near chance); they are recomputed
    over the windows with torch's `update_bn` (as for SWA) before evaluating, which a
    longer run with larger batches should not need.
    """
    L.seed_everything(0, verbose=False)
    datamodule = tiny_datamodule(
        synth_root, synth_cache, val_fraction=0.0, test_fraction=0.0, batch_size=5
    )
    module = align_module(datamodule, windows_per_clip=1, lr=1e-3)
    fit(module, datamodule, tmp_path, max_steps=12)
    dataset = datamodule.datasets["train"]
    dataset.random_window = False  # every clip's centre window, as in validation
    windows = flatten_windows(next(iter(DataLoader(dataset, batch_size=len(dataset)))))
    mel = module.mel(windows.audio)
    update_bn([mel], module.audio_encoder)
    module.eval()
    with torch.no_grad():
        logits = class_logits(module.audio_encoder(mel), module.text_embeds, 1.0)
    accuracy = (logits.argmax(dim=1) == windows.category).float().mean().item()
    assert accuracy >= 0.5, accuracy  # 0.70 here; chance is 0.2


def test_align_checkpoint_leaves_clip_out(align_ckpt):
    checkpoint = torch.load(align_ckpt, map_location="cpu", weights_only=True)
    assert checkpoint["sgvideo_stage"] == "align"
    assert checkpoint["global_step"] == 4
    prefixes = {k.split(".")[0] for k in checkpoint["state_dict"]}
    assert prefixes == {"audio_encoder", "logit_scale"}
    encoder = load_audio_encoder(align_ckpt)
    assert encoder.embed_dim == 32
    hparams = checkpoint["hyper_parameters"]
    assert hparams["clip"] == "tiny" and hparams["mel"]["n_mels"] == 32


def test_resume_from_checkpoint_restores_the_module(align_ckpt, datamodule):
    module = AudioCLIPAlignment.load_from_checkpoint(align_ckpt)
    reference = load_audio_encoder(align_ckpt)
    mel = torch.rand(2, 32, 44)
    torch.testing.assert_close(module.audio_encoder.eval()(mel), reference(mel))


def test_bad_arguments_are_clear_errors(datamodule, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="categories are required"):
        AudioCLIPAlignment(categories=None, clip="tiny")
    with pytest.raises(ValueError, match="embed_dim 512 does not match the CLIP model's 32"):
        align_module(datamodule, embed_dim=512)
    with pytest.raises(FileNotFoundError, match=r"CLIP weights not found: .*ViT-B-32\.pt"):
        align_module(datamodule, clip=str(tmp_path / "ViT-B-32.pt"))
    module = align_module(datamodule, window_seconds=0.25)
    bad = {"audio": torch.zeros(1, 2, 22050), "frames": torch.zeros(1, 2, 3, 32, 32)}
    bad["category"] = torch.zeros(1, dtype=torch.long)
    with pytest.raises(ValueError, match="model and data settings disagree"):
        module.training_step(bad, 0)
