"""Stage 1 (SoundInversion) with tiny models: losses, gradients, checkpoints, resume, DDP."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from PIL import Image

from sgvideo.lit.inversion import SoundInversion
from sgvideo.lit.windows import flatten_windows
from sgvideo.models.inversion_encoder import load_inversion_encoder
from tests.fixtures.stages import (
    first_batch,
    fit,
    inversion_module,
    train_only_datamodule,
    two_rank_run,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def datamodule(synth_root, synth_cache):
    return train_only_datamodule(synth_root, synth_cache, batch_size=5)


@pytest.fixture(scope="module")
def batch(datamodule):
    return first_batch(datamodule)


@pytest.fixture
def make(datamodule, tiny_generator_path, align_ckpt):
    def build(generator_path=tiny_generator_path, audio_encoder_path=align_ckpt, **overrides):
        L.seed_everything(0, verbose=False)
        return inversion_module(datamodule, generator_path, audio_encoder_path, **overrides)

    return build


def test_starts_at_w_avg_and_trains_only_the_encoder(make, batch):
    module = make().train()
    windows = flatten_windows(batch, 1)
    mel = module.mel(windows.audio)
    w = module(mel)
    assert w.shape == (5, 8, 32)
    torch.testing.assert_close(w, module.generator.w_avg.expand(5, 8, 32))
    fake, losses = module._losses(windows)
    assert fake.shape == (5, 3, 32, 32)
    assert set(losses) == {"audio", "text", "latent"}
    assert losses["latent"] == 0  # w_a = w_avg
    for name in ("audio", "text"):
        assert 0 < losses[name] < 2
    module._total(losses).backward()
    trained = {n for n, p in module.named_parameters() if p.grad is not None}
    assert trained == {n for n, _ in module.encoder.named_parameters(prefix="encoder")}
    for name in module.frozen_modules:
        frozen = getattr(module, name)
        assert not frozen.training and not any(p.requires_grad for p in frozen.parameters())


def test_frozen_audio_encoder_statistics_do_not_move(make, batch):
    module = make().train()
    before = {k: v.clone() for k, v in module.audio_encoder.state_dict().items()}
    module._losses(flatten_windows(batch, 1))
    after = module.audio_encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_layout_term_compares_area_averaged_thumbnails(make, batch):
    module = make(layout_weight=2.0, layout_size=4, audio_weight=0.0, text_weight=0.0)
    windows = flatten_windows(batch, 1)
    fake, losses = module._losses(windows)
    assert set(losses) == {"layout", "latent"}

    def thumbnail(images):  # 32 px -> 4 x 4 means of 8 x 8 blocks
        return images.unflatten(2, (4, 8)).unflatten(4, (4, 8)).mean(dim=(3, 5))

    expected = (thumbnail(fake) - thumbnail(windows.frames)).square().mean()
    torch.testing.assert_close(losses["layout"], expected)
    assert module._total(losses).item() == pytest.approx(
        2 * expected.item() + losses["latent"].item()
    )


# Without the audio term, no audio encoder is needed: the cheaper setting for mechanics tests.
FRAME_ONLY = {"frame_weight": 1.0, "audio_weight": 0.0, "text_weight": 0.0}


@pytest.mark.parametrize(
    "weights, steps, factor",
    [
        # CLIP distance to the paired real frames: a reachable target, falls 3x in 8 steps.
        (FRAME_ONLY | {"audio_encoder_path": None}, 8, 3.0),
        # The paper's audio + text distances: random tiny G and CLIP cannot get near those
        # targets, yet the loss must fall steadily (2 % in 6 steps).
        ({}, 6, 1 / 0.98),
    ],
    ids=["frame", "audio+text"],
)
def test_overfits_a_fixed_batch(make, batch, weights, steps, factor):
    """On one fixed batch, a few AdamW steps (lr 3e-3) cut the loss by `factor`."""
    module = make(lr=3e-3, latent_weight=0.0, **weights).train()
    optimizer = module.configure_optimizers()["optimizer"]
    windows = flatten_windows(batch, 1)
    losses = []
    for _ in range(steps):
        loss = module._total(module._losses(windows)[1])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / factor, losses


def test_checkpoint_holds_only_the_encoder(inversion_ckpt, make, batch):
    checkpoint = torch.load(inversion_ckpt, map_location="cpu", weights_only=True)
    assert checkpoint["sgvideo_stage"] == "inversion" and checkpoint["global_step"] == 4
    assert {k.split(".")[0] for k in checkpoint["state_dict"]} == {"encoder"}
    encoder, hparams = load_inversion_encoder(inversion_ckpt)
    assert (encoder.n_latent, encoder.style_dim, encoder.n_mels) == (8, 32, 32)
    assert hparams["mel"]["sample_rate"] == 44100 and hparams["window_seconds"] == 0.5
    module = SoundInversion.load_from_checkpoint(inversion_ckpt)
    mel = torch.rand(2, 32, 44)
    torch.testing.assert_close(module.encoder.eval()(mel), encoder(mel))


def _fit(make, datamodule, root, max_steps, **kwargs):
    L.seed_everything(0, verbose=False)
    module = make(windows_per_clip=1, audio_encoder_path=None, **FRAME_ONLY)
    trainer = fit(module, datamodule, root, max_steps, **kwargs)
    checkpoint = torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)
    return trainer, module, checkpoint


def test_resume_continues_exactly(make, datamodule, tmp_path):
    """Stopped after 2 steps (one epoch) and resumed to 4 == 4 steps in one go."""
    _, _, whole = _fit(make, datamodule, tmp_path / "whole", 4, save_every=2)
    _, _, first = _fit(make, datamodule, tmp_path / "part", 2, save_every=2)
    assert first["global_step"] == 2
    last = tmp_path / "part" / "checkpoints" / "last.ckpt"
    trainer, _, resumed = _fit(make, datamodule, tmp_path / "part", 4, save_every=2, ckpt_path=last)
    assert trainer.global_step == resumed["global_step"] == whole["global_step"] == 4
    for key, value in whole["state_dict"].items():
        assert torch.equal(resumed["state_dict"][key], value), key
    assert resumed["lr_schedulers"] == whole["lr_schedulers"]
    assert whole["lr_schedulers"][0]["last_epoch"] == 2
    adam_whole, adam_resumed = whole["optimizer_states"][0], resumed["optimizer_states"][0]
    for index, state in adam_whole["state"].items():
        for name, value in state.items():
            assert torch.equal(adam_resumed["state"][index][name], value), (index, name)


def test_adversarial_option_trains_a_discriminator_and_writes_images(make, datamodule, tmp_path):
    module = make(adv_weight=0.1, windows_per_clip=1, log_images_every_n_steps=2)
    assert not module.automatic_optimization
    d_before = {k: v.clone() for k, v in module.discriminator.state_dict().items()}
    trainer = fit(module, datamodule, tmp_path, max_steps=4)
    # Manual optimisation: encoder and discriminator steps both count toward global_step.
    assert trainer.global_step == 4
    d_after = module.discriminator.state_dict()
    assert any(not torch.equal(d_before[k], d_after[k]) for k in d_before)
    images = sorted((tmp_path / "images").glob("step_*.png"))
    assert [p.name for p in images] == ["step_0000000.png", "step_0000002.png"]
    with Image.open(images[0]) as grid:  # 4 rows of real | generated 32 px tiles, 2 px padding
        assert grid.size == (2 * 34 + 2, 4 * 34 + 2)
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert {k.split(".")[0] for k in checkpoint["state_dict"]} == {"encoder", "discriminator"}


def test_missing_or_wrong_weights_are_clear_errors(
    make, tiny_generator_path, inversion_ckpt, tmp_path
):
    with pytest.raises(FileNotFoundError, match=r"not found: .*missing_g\.pt"):
        make(generator_path=str(tmp_path / "missing_g.pt"))
    with pytest.raises(FileNotFoundError, match=r"audio encoder weights not found: .*none\.ckpt"):
        make(audio_encoder_path=str(tmp_path / "none.ckpt"))
    with pytest.raises(
        ValueError, match=("checkpoint of stage 'inversion', expected a 'align' checkpoint")
    ):
        make(audio_encoder_path=str(inversion_ckpt))
    with pytest.raises(FileNotFoundError, match=r"CLIP weights not found: .*ViT-B-32\.pt"):
        make(clip=str(tmp_path / "ViT-B-32.pt"))
    from sgvideo.models.audio_encoder import AudioEncoder

    wide = tmp_path / "wide.pth"
    torch.save(AudioEncoder(embed_dim=16).state_dict(), wide)
    with pytest.raises(ValueError, match="embeds into 16 dims but the CLIP model into 32"):
        make(audio_encoder_path=str(wide))
    with pytest.raises(ValueError, match="needs audio_encoder_path"):
        make(audio_encoder_path=None)


def test_ddp_two_cpu_processes_keep_identical_weights(
    synth_root, synth_cache, tiny_generator_path, align_ckpt, tmp_path
):
    script = REPO / "tests" / "ddp_inversion_run.py"
    args = [synth_root, synth_cache, tiny_generator_path, align_ckpt, tmp_path]
    ranks = two_rank_run(script, tmp_path, *args)
    assert [r["world"] for r in ranks] == [2, 2]
    assert [r["global_step"] for r in ranks] == [2, 2]
    for key, value in ranks[0]["encoder"].items():
        assert torch.equal(ranks[1]["encoder"][key], value), key
    moved = [k for k, v in ranks[0]["encoder"].items() if k.endswith("linear.weight") and v.any()]
    assert moved  # the heads left their zero start: training happened
