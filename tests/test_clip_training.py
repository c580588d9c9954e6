"""The CLIP stage (CLIPTraining): export in OpenAI's layout, zero-shot accuracy, resume, CLI."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from clip.model import build_model
from lightning.pytorch.callbacks import ModelCheckpoint

from sgvideo.cli import main
from sgvideo.lit.clip_training import CLIPTraining, augment_images, labelled_frames
from sgvideo.models.clip_model import (
    SMALL_CLIP,
    build_clip,
    clip_image_embed,
    clip_text_embed,
    load_clip,
    save_clip,
    zero_shot_accuracy,
)
from tests.fixtures.data import SYNTH_DATA_FLAGS
from tests.fixtures.stages import quiet_trainer, two_rank_run

REPO = Path(__file__).resolve().parents[1]

CONFIGS = REPO / "configs"
CATEGORIES = ["fire", "rain", "thunder", "water", "wind"]
# One solid colour per category: separable data a few steps can learn.
COLOURS = torch.tensor(
    [[0.9, -0.6, -0.9], [-0.2, -0.2, 0.1], [-0.9, -0.9, -0.5], [-0.8, 0.2, 0.9], [0.1, 0.8, -0.5]]
)
# SMALL_CLIP halved in depth, at 16 px, with a 32-d joint space.
TINY_ARCHITECTURE = SMALL_CLIP | dict(
    embed_dim=32, image_resolution=16, vision_layers=1, transformer_layers=1
)


class ColourWindows(torch.utils.data.Dataset):
    """Windows of 2 noisy solid-colour frames "2 3 16 16", the colour saying the category."""

    def __init__(self, windows: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.category = torch.arange(windows) % len(CATEGORIES)
        colours = COLOURS[self.category][:, None, :, None, None].expand(-1, 2, 3, 16, 16)
        self.frames = (colours + 0.1 * torch.randn(colours.shape, generator=generator)).clamp(-1, 1)

    def __len__(self) -> int:
        return len(self.category)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"frames": self.frames[index], "category": self.category[index]}


def colour_loader(windows: int = 20, seed: int = 0, shuffle: bool = True):
    return torch.utils.data.DataLoader(ColourWindows(windows, seed), batch_size=10, shuffle=shuffle)


def tiny_module(**overrides) -> CLIPTraining:
    kwargs = dict(categories=CATEGORIES, architecture=TINY_ARCHITECTURE, lr=1e-3, warmup_steps=5)
    return CLIPTraining(**(kwargs | overrides))


def held_out_accuracy(model) -> float:
    data = ColourWindows(10, seed=1)
    frames = data.frames[:, 0]
    return zero_shot_accuracy(model, frames, data.category, CATEGORIES)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[CLIPTraining, Path]:
    """A tiny CLIP fitted for 20 steps on solid colours, exported to a folder not yet made."""
    L.seed_everything(0, verbose=False)
    root = tmp_path_factory.mktemp("clip")
    export = root / "not" / "yet" / "clip.pt"
    module = tiny_module(export_path=str(export), frames_per_window=2)
    trainer = quiet_trainer(root, max_steps=20, max_epochs=-1)
    trainer.fit(module, train_dataloaders=colour_loader())
    return module.eval(), export


def test_zero_shot_accuracy_beats_chance_after_a_short_fit(trained) -> None:
    module, export = trained
    untrained = build_clip(**TINY_ARCHITECTURE).eval()
    assert held_out_accuracy(untrained) <= 0.4
    assert held_out_accuracy(module.clip) >= 0.8  # chance is 0.2


def test_export_loads_through_load_clip_with_equal_embeddings(trained) -> None:
    module, export = trained
    assert export.is_file()  # its folder was created
    loaded = load_clip(export)
    images = torch.rand(3, 3, 24, 24) * 2 - 1
    with torch.no_grad():
        expected_images = clip_image_embed(module.clip, images)
    torch.testing.assert_close(clip_image_embed(loaded, images), expected_images)
    prompts = ["a photo of fire", "wind sounds"]
    torch.testing.assert_close(
        clip_text_embed(loaded, prompts), clip_text_embed(module.clip, prompts)
    )
    torch.testing.assert_close(loaded.logit_scale, module.clip.logit_scale.detach())
    assert loaded.visual.input_resolution == 16 and not loaded.training


def test_export_has_openai_layout_and_build_model_reads_it(trained) -> None:
    module, export = trained
    state = torch.load(export, map_location="cpu", weights_only=True)
    assert int(state["input_resolution"]) == 16
    assert int(state["context_length"]) == 77 and int(state["vocab_size"]) == 49408
    model = build_model(dict(state))
    assert set(model.state_dict()) == set(state) - {
        "input_resolution",
        "context_length",
        "vocab_size",
    }
    assert model.visual.input_resolution == 16 and model.context_length == 77


def test_resnet_architecture_round_trips(tmp_path) -> None:
    resnet = build_clip(
        embed_dim=32,
        image_resolution=32,
        vision_layers=[1, 1, 1, 1],
        vision_width=64,
        transformer_width=64,
        transformer_layers=1,
    ).eval()
    loaded = load_clip(save_clip(resnet, tmp_path / "resnet.pt"))
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        expected = clip_image_embed(resnet, images)
    torch.testing.assert_close(clip_image_embed(loaded, images), expected)


def test_fine_tuning_starts_from_the_given_clip(trained, tmp_path) -> None:
    module, export = trained
    tuned = CLIPTraining(categories=CATEGORIES, init_from=str(export))
    assert all(p.requires_grad for p in tuned.clip.parameters())
    for key, value in load_clip(export).state_dict().items():
        torch.testing.assert_close(tuned.clip.state_dict()[key], value)
    tuned.train()._loss(*labelled_frames(next(iter(colour_loader())), 1)).backward()
    assert tuned.clip.visual.conv1.weight.grad is not None


def test_bad_arguments_are_clear_errors(tmp_path) -> None:
    with pytest.raises(ValueError, match="categories are required"):
        CLIPTraining(categories=None)
    not_clip = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(2)}, not_clip)
    with pytest.raises(ValueError, match=f"{not_clip} is not an OpenAI CLIP checkpoint"):
        CLIPTraining(categories=CATEGORIES, init_from=str(not_clip))
    with pytest.raises(ValueError, match="not both"):
        tiny_module(init_from=str(not_clip))
    with pytest.raises(ValueError, match="multiple of 64"):
        tiny_module(architecture=TINY_ARCHITECTURE | {"transformer_width": 48})
    with pytest.raises(ValueError, match="vision_patch_size"):
        tiny_module(architecture=TINY_ARCHITECTURE | {"vision_patch_size": 5})


def test_augmentation_keeps_shape_range_and_can_be_the_identity() -> None:
    images = torch.rand(4, 3, 16, 16) * 2 - 1
    same = augment_images(images, crop_scale=(1.0, 1.0), mirror=False, jitter=0.0)
    torch.testing.assert_close(same, images, atol=1e-5, rtol=0)
    mirrored = augment_images(images, crop_scale=(1.0, 1.0), mirror=True, jitter=0.0)
    for got, image in zip(mirrored, images, strict=True):
        assert torch.allclose(got, image, atol=1e-5) or torch.allclose(
            got, image.flip(-1), atol=1e-5
        )
    changed = augment_images(images)
    assert changed.shape == images.shape and changed.abs().max() <= 1.0


def test_labelled_frames_keep_each_frame_with_its_category() -> None:
    frames = torch.arange(3)[:, None, None, None, None].float().expand(3, 4, 3, 2, 2)
    images, category = labelled_frames({"frames": frames, "category": torch.tensor([2, 0, 1])}, 2)
    assert images.shape == (6, 3, 2, 2)
    assert category.tolist() == [2, 2, 0, 0, 1, 1]
    assert images[:, 0, 0, 0].tolist() == [0, 0, 1, 1, 2, 2]


def test_resume_continues_from_the_checkpoint(tmp_path) -> None:
    def fit(module: CLIPTraining, ckpt_path: Path | None = None) -> L.Trainer:
        checkpoint = ModelCheckpoint(dirpath=tmp_path / "checkpoints", save_last=True)
        trainer = quiet_trainer(tmp_path, max_steps=2, max_epochs=-1, callbacks=[checkpoint])
        trainer.fit(module, train_dataloaders=colour_loader(), ckpt_path=ckpt_path)
        return trainer

    L.seed_everything(0, verbose=False)
    fit(tiny_module())
    last = tmp_path / "checkpoints" / "last.ckpt"
    saved = torch.load(last, map_location="cpu", weights_only=True)
    assert saved["sgvideo_stage"] == "clip" and saved["global_step"] == 2
    resumed = tiny_module()
    trainer = fit(resumed, ckpt_path=last)
    assert trainer.global_step == 2  # nothing left to train: the weights are the checkpoint's
    for key, value in resumed.state_dict().items():
        torch.testing.assert_close(value, saved["state_dict"][key])


def _cli_args(synth_root, synth_cache, root: Path, steps: int) -> list[str]:
    demo = CONFIGS / "demo"
    args = ["clip", "fit", "--config", str(demo / "base.yaml"), "--config", str(demo / "clip.yaml")]
    args += [*SYNTH_DATA_FLAGS, "--data.num_frames=4", "--data.batch_size=4"]
    return args + [
        f"--data.root={synth_root}",
        f"--data.cache_dir={synth_cache}",
        f"--model.export_path={root / 'export' / 'clip.pt'}",
        f"--trainer.default_root_dir={root}",
        "--trainer.logger=false",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--trainer.max_steps={steps}",
        "--trainer.max_epochs=-1",
        "--trainer.check_val_every_n_epoch=1",
    ]


def test_cli_fits_exports_and_resumes(synth_root, synth_cache, tmp_path) -> None:
    assert main(_cli_args(synth_root, synth_cache, tmp_path, steps=2)) == 0
    export = tmp_path / "export" / "clip.pt"
    assert load_clip(export).visual.input_resolution == 32
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 2
    assert main([*_cli_args(synth_root, synth_cache, tmp_path, steps=3), "--ckpt_path=last"]) == 0
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 3


def test_cli_names_a_file_that_is_not_clip(synth_root, synth_cache, tmp_path, capsys) -> None:
    not_clip = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(2)}, not_clip)
    args = _cli_args(synth_root, synth_cache, tmp_path, steps=1)
    args += ["--model.architecture=null", f"--model.init_from={not_clip}"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"sgvideo clip: error: {not_clip} is not an OpenAI CLIP checkpoint")


def test_ddp_two_cpu_processes_keep_identical_weights_and_rank_0_exports(tmp_path) -> None:
    ranks = two_rank_run(REPO / "tests" / "ddp_clip_run.py", tmp_path, tmp_path)
    assert [r["world"] for r in ranks] == [2, 2]
    assert [r["global_step"] for r in ranks] == [2, 2]
    for key, value in ranks[0]["clip"].items():
        assert torch.equal(ranks[1]["clip"][key], value), key
    moved = [k for k, v in ranks[0]["clip"].items() if not torch.equal(v, ranks[0]["initial"][k])]
    assert moved  # training happened
    exported = load_clip(str(tmp_path / "clip.pt"))
    for key, value in exported.state_dict().items():
        torch.testing.assert_close(value, ranks[0]["clip"][key].float())
