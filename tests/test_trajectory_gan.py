"""Stage 2 LightningModule: what trains, losses, resume, DDP, text init, checkpoints, errors."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import lightning as L
import pytest
import torch
from einops import rearrange
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from torch.utils.data import DataLoader, Dataset

from sgvideo.audio import MelSettings
from sgvideo.checkpoints.trajectory import load_trajectory_checkpoint
from sgvideo.lit.trajectory import TrajectoryGAN
from sgvideo.lit.trajectory_support import restarted
from sgvideo.losses import (
    cosine_distance,
    detail_distance,
    layout_distance,
    motion_matching_loss,
)
from sgvideo.models.clip_model import clip_image_embed, clip_text_embed, prompts_for
from sgvideo.models.inversion_encoder import (
    ENCODER_CONFIG_KEY,
    SoundInversionEncoder,
    load_inversion_encoder,
)
from sgvideo.models.stylegan2_layers import NoiseInjection
from sgvideo.models.trajectory import TrajectoryGenerator
from tests.fixtures.stages import quiet_trainer, two_rank_run

REPO = Path(__file__).resolve().parents[1]
CATEGORIES = ["fire", "rain", "thunder", "water", "wind"]
FRAMES = 3
TRAINED = ("trajectory", "image_d", "video_d")


def audio_settings(inversion_path: str | Path) -> dict:
    """The audio settings of a stage-1 checkpoint, which stage 2 must share."""
    _, hparams = load_inversion_encoder(inversion_path)
    return {"mel": MelSettings.from_hparams(hparams), "window_seconds": hparams["window_seconds"]}


class RandomClips(Dataset):
    """Seeded random clips shaped like the landscape DataModule's items (32 px frames)."""

    def __init__(self, n: int, sample_rate: int, window_seconds: float) -> None:
        self.n, self.window = n, round(sample_rate * window_seconds)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict:
        g = torch.Generator().manual_seed(index)
        audio = 0.3 * torch.randn(FRAMES, self.window, generator=g)
        return {
            "frames": torch.rand(FRAMES, 3, 32, 32, generator=g) * 2 - 1,
            "audio": audio,
            "waveform": audio.flatten(),
            "category": torch.tensor(index % len(CATEGORIES)),
        }


def model_kwargs(paths: dict, **overrides) -> dict:
    kwargs = dict(
        generator_path=str(paths["generator"]),
        inversion_path=str(paths["inversion"]),
        audio_encoder_path=str(paths["align"]),
        clip="tiny",
        categories=CATEGORIES,
        num_frames=FRAMES,
        hidden=16,
        num_layers=2,
        image_d_channels=8,
        video_d_channels=4,
        sample_every_n_steps=0,
        **audio_settings(paths["inversion"]),
    )
    kwargs.update(overrides)
    return kwargs


def loader(paths: dict, n: int = 4, batch_size: int = 2) -> DataLoader:
    settings = audio_settings(paths["inversion"])
    data = RandomClips(n, settings["mel"].sample_rate, settings["window_seconds"])
    return DataLoader(data, batch_size=batch_size, shuffle=True)


def trainer(root: Path, **kwargs) -> L.Trainer:
    return quiet_trainer(root, **({"enable_checkpointing": False} | kwargs))


def trained_state(model: TrajectoryGAN) -> dict[str, torch.Tensor]:
    return {
        k: v.detach().clone() for k, v in model.state_dict().items() if k.split(".")[0] in TRAINED
    }


@pytest.fixture(scope="module")
def paths(tiny_generator_path, inversion_ckpt, align_ckpt) -> dict:
    return {"generator": tiny_generator_path, "inversion": inversion_ckpt, "align": align_ckpt}


class Recorder(Callback):
    """Losses of every step and the gradients after the first one."""

    def __init__(self) -> None:
        self.losses: list[tuple[float, float]] = []
        self.grads: dict[str, torch.Tensor | None] | None = None
        self.frozen_in_train_mode: list[str] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        metrics = trainer.callback_metrics
        self.losses.append((float(metrics["train/d_loss"]), float(metrics["train/g_loss"])))
        if self.grads is None:
            self.grads = {name: p.grad for name, p in module.named_parameters()}
        modes = {name: getattr(module, name).training for name in module.frozen_modules}
        self.frozen_in_train_mode += [name for name, training in modes.items() if training]


@pytest.fixture(scope="module")
def tiny_run(paths, tmp_path_factory) -> tuple[TrajectoryGAN, Recorder, dict, Path]:
    root = tmp_path_factory.mktemp("tiny_run")
    model = TrajectoryGAN(**model_kwargs(paths, lr=1e-3, sample_every_n_steps=3))
    before = trained_state(model)
    recorder = Recorder()
    trainer(root, max_steps=4, callbacks=[recorder]).fit(model, loader(paths, n=8))
    return model, recorder, before, root


def test_only_trajectory_and_discriminators_learn(tiny_run) -> None:
    model, recorder, before, _ = tiny_run
    for name, grad in recorder.grads.items():
        if name.split(".")[0] in TRAINED:
            assert grad is not None and torch.isfinite(grad).all(), name
        else:
            assert grad is None and not model.get_parameter(name).requires_grad, name
    for part in TRAINED:
        moved = [not torch.equal(v, before[k]) for k, v in trained_state(model).items()]
        assert any(k.startswith(part) for k, m in zip(before, moved, strict=True) if m), part
    for part in TRAINED:
        grads = [g for n, g in recorder.grads.items() if n.startswith(part)]
        assert sum(g.abs().sum() for g in grads) > 0, part
    assert recorder.frozen_in_train_mode == []  # frozen networks stay in eval mode


def test_tiny_run_losses_are_finite_and_move(tiny_run) -> None:
    _, recorder, _, _ = tiny_run
    losses = torch.tensor(recorder.losses)
    assert losses.shape == (4, 2)
    assert torch.isfinite(losses).all()
    assert (losses.std(dim=0) > 0).all()


def test_samples_are_written(tiny_run) -> None:
    from sgvideo.video_io import read_frames

    _, _, _, root = tiny_run
    samples = root / "samples"
    assert sorted(p.name for p in samples.iterdir()) == [
        "step0000000.mp4",
        "step0000000.png",
        "step0000003.mp4",
        "step0000003.png",
    ]
    frames = read_frames(samples / "step0000003.mp4")
    assert frames.shape == (FRAMES, 32, 64, 3)


def test_checkpoint_holds_only_trained_weights_and_rebuilds_the_net(trajectory_ckpt, paths) -> None:
    saved = torch.load(trajectory_ckpt, weights_only=True)
    assert {k.split(".")[0] for k in saved["state_dict"]} == set(TRAINED)
    net, hparams = load_trajectory_checkpoint(trajectory_ckpt)
    assert hparams["generator_path"] == str(paths["generator"])
    assert hparams["inversion_path"] == str(paths["inversion"])
    assert hparams["init"] == "audio" and "start_latents" not in hparams
    # linked from the data by the CLI (the fixture's 6 frames over 2 s)
    assert hparams["num_frames"] == 6 and hparams["window_seconds"] == pytest.approx(2 / 6)
    assert hparams["categories"] == CATEGORIES
    assert not net.training
    assert (trajectory_ckpt.parents[1] / "samples" / "step0000000.mp4").is_file()
    model = TrajectoryGAN.load_from_checkpoint(trajectory_ckpt)
    batch = next(iter(loader(paths, n=2)))
    with torch.no_grad():
        _, w_a = model.sound_latents(batch["waveform"], batch["audio"].shape[1])
        features = model.frame_features(batch["audio"])
        assert features.shape == (*batch["audio"].shape[:2], net.audio_dim)
        torch.testing.assert_close(
            net(w_a[:, 0], w_a, features),
            model(batch["waveform"], batch["audio"], batch["category"]),
        )
    with pytest.raises(ValueError, match="expected a 'trajectory' checkpoint"):
        load_trajectory_checkpoint(paths["inversion"])


def test_resume_from_last_equals_uninterrupted_run(paths, tmp_path) -> None:
    def run(root: Path, epochs: int, resume: Path | None = None) -> TrajectoryGAN:
        L.seed_everything(0)
        model = TrajectoryGAN(**model_kwargs(paths, noise_dim=2))
        callback = ModelCheckpoint(dirpath=root, save_last=True)
        fit = trainer(root, max_epochs=epochs, enable_checkpointing=True, callbacks=[callback])
        fit.fit(model, loader(paths, n=2), ckpt_path=resume)
        return model

    straight = trained_state(run(tmp_path / "a", 2))
    run(tmp_path / "b", 1)
    resumed = trained_state(run(tmp_path / "b", 2, resume=tmp_path / "b" / "last.ckpt"))
    assert straight.keys() == resumed.keys()
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=0, atol=0, msg=key)


def fit_two_steps(
    paths: dict, tmp_path: Path, learned: tuple[str, ...], **options
) -> tuple[TrajectoryGAN, TrajectoryGenerator]:
    """Two training steps with `options`; the `learned` weights must move. Returns the model
    and the trajectory net rebuilt from the run's checkpoint."""
    L.seed_everything(0)
    model = TrajectoryGAN(**model_kwargs(paths, **options))
    before = trained_state(model)
    fit = trainer(tmp_path, max_steps=2)
    fit.fit(model, loader(paths, n=2))
    after = trained_state(model)
    for key in learned:
        assert not torch.equal(before[key], after[key]), key
    fit.save_checkpoint(tmp_path / "two_steps.ckpt")
    net, _ = load_trajectory_checkpoint(tmp_path / "two_steps.ckpt")
    return model, net


def test_orbit_trains_and_is_rebuilt_from_its_checkpoint(paths, tmp_path) -> None:
    """The sound-paced circles learn (axes, loudness gains, paces move) and a checkpoint
    rebuilds the same net, which gives the LightningModule's latents."""
    learned = ("trajectory.orbit_axes.coarse", "trajectory.orbit_loudness.weight")
    model, net = fit_two_steps(
        paths, tmp_path, learned, orbit=True, orbit_radius=0.2, orbit_memory=5
    )
    assert net.orbit and net.orbit_radius == 0.2 and net.orbit_memory == 5
    batch = next(iter(loader(paths, n=2)))
    with torch.no_grad():
        _, w_a = model.sound_latents(batch["waveform"], batch["audio"].shape[1])
        torch.testing.assert_close(
            net(w_a[:, 0], w_a, model.frame_features(batch["audio"])),
            model.eval()(batch["waveform"], batch["audio"], batch["category"]),
        )


@pytest.mark.parametrize("scroll", ["noise_drift", "scene_pan"])
def test_scrolls_train_and_are_rebuilt_from_their_checkpoint(paths, tmp_path, scroll) -> None:
    learned = (f"trajectory.{scroll}.loudness.weight", f"trajectory.{scroll}.loudness.bias")
    model, net = fit_two_steps(paths, tmp_path, learned, **{scroll: True}, motion_weight=1.0)
    batch = next(iter(loader(paths, n=2)))
    features = model.frame_features(batch["audio"])
    with torch.no_grad():
        torch.testing.assert_close(
            getattr(net, scroll).offsets(features),
            getattr(model.trajectory, scroll).offsets(features),
        )


DDP_SCRIPT = """
import json, sys
import lightning as L, torch
from lightning.pytorch.strategies import DDPStrategy
from tests.test_trajectory_gan import loader, model_kwargs, trained_state, trainer
from sgvideo.lit.trajectory import TrajectoryGAN

paths, out = json.loads(sys.argv[1]), sys.argv[2]
L.seed_everything(0)
model = TrajectoryGAN(**model_kwargs(paths, lr=1e-3))
before = trained_state(model)
strategy = DDPStrategy(process_group_backend="gloo", find_unused_parameters=True)
fit = trainer(out, devices=2, strategy=strategy, max_steps=2)
fit.fit(model, loader(paths, n=8, batch_size=1))
torch.save({"before": before, "after": trained_state(model)}, f"{out}/rank{fit.global_rank}.pt")
"""


def test_ddp_two_processes_keep_identical_weights(paths, tmp_path) -> None:
    script = tmp_path / "ddp_fit.py"
    script.write_text(DDP_SCRIPT)
    args = json.dumps({k: str(v) for k, v in paths.items()})
    ranks = two_rank_run(script, tmp_path, args, tmp_path)
    for key, value in ranks[0]["after"].items():
        torch.testing.assert_close(ranks[1]["after"][key], value, rtol=0, atol=0, msg=key)
    assert any(not torch.equal(v, ranks[0]["before"][k]) for k, v in ranks[0]["after"].items())


def test_plain_ddp_without_unused_parameter_detection_is_refused(paths) -> None:
    from unittest import mock

    model = TrajectoryGAN(**model_kwargs(paths))
    wrapped = mock.Mock(spec=torch.nn.parallel.DistributedDataParallel)
    wrapped.find_unused_parameters = False
    model._trainer = mock.Mock()
    model._trainer.precision_plugin.scaler = None
    model._trainer.strategy.model = wrapped
    with pytest.raises(ValueError, match="ddp_find_unused_parameters_true"):
        model.on_fit_start()


def test_text_init_starts_from_the_latent_nearest_the_prompt(paths, tmp_path) -> None:
    model = TrajectoryGAN(**model_kwargs(paths, init="text", text_init_samples=6))
    assert model.anchor_weight == 1.0
    starts = model.choose_start_latents()
    g, clip = model.generator, model.clip
    z = torch.randn(6, g.style_dim, generator=torch.Generator().manual_seed(0))
    pool = g.truncate(g.mapping(z), 0.7)
    with torch.no_grad():
        images = g.synthesis(pool[:, None].expand(-1, g.n_latent, -1))
        similarity = (
            clip_text_embed(clip, prompts_for(CATEGORIES)) @ clip_image_embed(clip, images).T
        )
    for c in range(len(CATEGORIES)):
        index = [i for i in range(6) if torch.allclose(pool[i], starts[c, 0])]
        assert len(index) == 1 and (starts[c] == starts[c, :1]).all()
        assert similarity[c, index[0]] == similarity[c].max()

    callback = ModelCheckpoint(dirpath=tmp_path, save_last=True)
    trainer(tmp_path, max_steps=1, enable_checkpointing=True, callbacks=[callback]).fit(
        model, loader(paths, n=2)
    )
    torch.testing.assert_close(model.start_latents, starts)
    net, hparams = load_trajectory_checkpoint(tmp_path / "last.ckpt")
    assert list(hparams["start_latents"]) == CATEGORIES
    torch.testing.assert_close(torch.stack(list(hparams["start_latents"].values())), starts)
    restored = TrajectoryGAN.load_from_checkpoint(tmp_path / "last.ckpt")
    assert bool(restored.start_latents_ready)
    torch.testing.assert_close(restored.start_latents, starts)


def test_restarts_take_another_clips_start_latent() -> None:
    w0 = torch.arange(6.0).view(6, 1, 1).expand(6, 2, 3)
    torch.manual_seed(0)
    moved = restarted(w0, 1.0)
    rows = moved[:, 0, 0].long()
    assert (rows != torch.arange(6)).all()  # every clip starts elsewhere...
    assert set(rows.tolist()) <= set(range(6))  # ...at another clip's start latent
    torch.testing.assert_close(restarted(w0, 0.0), w0)
    torch.testing.assert_close(restarted(w0[:1], 1.0), w0[:1])  # nothing else to start from


def test_layout_detail_and_motion_terms_compare_each_clip_with_its_real_clip(paths) -> None:
    model = TrajectoryGAN(
        **model_kwargs(paths, layout_weight=2.0, detail_weight=3.0, motion_weight=0.5)
    )
    batch = next(iter(loader(paths, n=2)))
    fake, w, w_a, w0, mel = model._generate(batch)
    terms = model._generator_terms(fake, batch["frames"], w, w_a, w0, mel, all_terms=False)
    assert terms["layout"][0] == 2.0 and terms["motion"][0] == 0.5 and terms["detail"][0] == 3.0
    torch.testing.assert_close(terms["layout"][1], layout_distance(fake, batch["frames"], 8))
    torch.testing.assert_close(terms["detail"][1], detail_distance(fake, batch["frames"]))
    torch.testing.assert_close(terms["motion"][1], motion_matching_loss(fake, batch["frames"]))
    terms["motion"][1].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.trajectory.parameters())


def test_clip_term_reads_every_nth_frame_from_a_random_first_one(paths) -> None:
    model = TrajectoryGAN(**model_kwargs(paths, clip_frame_stride=2, clip_weight=1.0)).eval()
    batch = next(iter(loader(paths, n=2)))
    fake, w, w_a, w0, mel = model._generate(batch)
    terms = model._generator_terms(fake, batch["frames"], w, w_a, w0, mel, all_terms=False)
    read = lambda video: rearrange(video[:, 0::2], "b t ... -> (b t) ...")  # frames 0 and 2 of 3
    sound = model.audio_encoder(read(mel), normalize=True)
    expected = cosine_distance(clip_image_embed(model.clip, read(fake)), sound).mean()
    torch.testing.assert_close(terms["clip"][1], expected)
    numbered = torch.arange(FRAMES).view(1, FRAMES, 1).expand(2, FRAMES, 4)
    model.train()
    firsts = set()
    for _ in range(64):
        frames, again = model.clip_frames(numbered, numbered)
        torch.testing.assert_close(frames, again)  # every input alike
        assert frames.shape[0] == 2 * len(range(int(frames[0, 0]), FRAMES, 2))
        firsts.add(int(frames[0, 0]))
    assert firsts == {0, 1}
    with pytest.raises(ValueError, match="clip_frame_stride"):
        TrajectoryGAN(**model_kwargs(paths, clip_frame_stride=0))


@pytest.mark.parametrize("scrolls", [False, True])
def test_activation_checkpointing_gives_the_same_gradients(paths, scrolls: bool) -> None:
    model = TrajectoryGAN(**model_kwargs(paths, noise_drift=scrolls, scene_pan=scrolls))
    for module in model.generator.modules():
        if isinstance(module, NoiseInjection):  # noise that draws part of the picture
            module.weight.data.fill_(0.5)
    batch = next(iter(loader(paths, n=2)))
    grads = []
    for enabled in (False, True):
        model.hparams.checkpoint_synthesis = enabled
        model.trajectory.zero_grad(set_to_none=True)
        w = model(batch["waveform"], batch["audio"], batch["category"])
        offsets = model.trajectory.scroll_offsets(model.frame_features(batch["audio"]))
        model.synthesize(w, *offsets).square().mean().backward()
        grads.append([p.grad.clone() for p in model.trajectory.parameters()])
    for plain, checkpointed in zip(*grads, strict=True):
        torch.testing.assert_close(checkpointed, plain)


def test_stage1_checkpoint_for_another_generator_is_a_clear_error(paths, tmp_path) -> None:
    checkpoint = torch.load(paths["inversion"], weights_only=True)
    config = {**checkpoint[ENCODER_CONFIG_KEY], "n_latent": 10}
    encoder = SoundInversionEncoder(**config)
    checkpoint[ENCODER_CONFIG_KEY] = config
    checkpoint["state_dict"] = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
    wrong = tmp_path / "wrong.ckpt"
    torch.save(checkpoint, wrong)
    with pytest.raises(ValueError, match=r"predicts W\+ latents of 10 x \d+ but the generator"):
        TrajectoryGAN(**model_kwargs(paths, inversion_path=str(wrong)))


def test_other_audio_settings_than_stage1_are_a_clear_error(paths) -> None:
    settings = audio_settings(paths["inversion"])
    with pytest.raises(ValueError, match="other audio settings.*n_mels"):
        mel = replace(settings["mel"], n_mels=settings["mel"].n_mels + 8)
        TrajectoryGAN(**model_kwargs(paths, mel=mel))
    with pytest.raises(ValueError, match="init='text' needs the category names"):
        TrajectoryGAN(**model_kwargs(paths, init="text", categories=None))


def test_frames_of_another_size_are_a_clear_error(paths) -> None:
    model = TrajectoryGAN(**model_kwargs(paths))
    batch = next(iter(loader(paths, n=2)))
    batch["frames"] = torch.zeros(2, FRAMES, 3, 64, 64)
    with pytest.raises(ValueError, match="set the data's image_size to 32"):
        model.validation_step(batch, 0)


def test_paper_config_has_the_paper_settings(capsys) -> None:
    import yaml

    from sgvideo.cli import main

    config = str(REPO / "configs" / "trajectory.yaml")
    with pytest.raises(SystemExit) as done:
        main(["trajectory", "fit", "--config", config, "--print_config"])
    assert done.value.code in (0, None)
    config = yaml.safe_load(capsys.readouterr().out)
    model, data = config["model"], config["data"]
    assert (model["hidden"], model["num_layers"], model["audio_features"]) == (512, 5, True)
    assert (model["lr"], model["gamma"], model["clip_weight"]) == (1e-4, 0.98, 1e-3)
    assert (data["num_frames"], data["clip_seconds"], data["image_size"]) == (6, 2.0, 256)
    assert data["batch_size"] == 4
