"""Fréchet distance, FID and FVD against pytorch-fid / StyleGAN-V's math, merges, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image
from pytorch_fid import fid_score, inception
from torch import nn

from sgvideo.metrics import FID, FVD, TinyImageFeatures, TinyVideoFeatures, frechet_distance
from sgvideo.metrics.inception import fid_inception_architecture

# ---------------------------------------------------------------- frechet_distance


def _stats(rng: np.random.Generator, n: int, d: int, shift: float) -> tuple[np.ndarray, ...]:
    x = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) * 0.3 + shift
    return x.mean(0), np.cov(x, rowvar=False)


@pytest.mark.parametrize("n", [200, 40, 12])  # 12 and 40 samples for 32-d: (near-)singular
def test_frechet_distance_matches_pytorch_fid(n: int) -> None:
    rng = np.random.default_rng(n)
    mu1, s1 = _stats(rng, n, 32, 0.0)
    mu2, s2 = _stats(rng, n, 32, 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = fid_score.calculate_frechet_distance(mu1, s1, mu2, s2)
        ours = frechet_distance(mu1, s1, mu2, s2)
        from_torch = frechet_distance(*(torch.from_numpy(a).float() for a in (mu1, s1, mu2, s2)))
    assert ours == pytest.approx(expected, rel=1e-6)
    assert from_torch == pytest.approx(expected, rel=1e-3)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-4)


def test_frechet_distance_adds_eps_when_sqrtm_is_not_finite(monkeypatch) -> None:
    """Both implementations retry with eps * I when the first square root is not finite."""
    rng = np.random.default_rng(1)
    mu1, s1 = _stats(rng, 10, 16, 0.0)
    mu2, s2 = _stats(rng, 10, 16, 1.0)
    sqrtm = scipy.linalg.sqrtm
    calls = []

    def non_finite_then_real(a, *args, **kwargs):
        calls.append(1)
        if len(calls) % 2 == 1:
            bad = np.full_like(a, np.inf)
            return (bad, 0.0) if "disp" in kwargs else bad
        return sqrtm(a)

    monkeypatch.setattr(scipy.linalg, "sqrtm", non_finite_then_real)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = fid_score.calculate_frechet_distance(mu1, s1, mu2, s2, eps=1e-2)
        ours = frechet_distance(mu1, s1, mu2, s2, eps=1e-2)
    assert len(calls) == 4
    assert ours == pytest.approx(expected, rel=1e-9)
    monkeypatch.setattr(scipy.linalg, "sqrtm", sqrtm)
    assert ours != pytest.approx(frechet_distance(mu1, s1, mu2, s2), rel=1e-6)


def test_frechet_distance_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="means must be vectors of one size"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match=r"covariances must be \(3, 3\)"):
        frechet_distance(np.zeros(3), np.eye(4), np.zeros(3), np.eye(3))


# ---------------------------------------------------------------- FID vs pytorch-fid


@pytest.fixture(scope="module")
def random_inception_weights(tmp_path_factory) -> str:
    """A seeded random state dict for the FID Inception, saved under the real file name."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = fid_inception_architecture()
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    path = tmp_path_factory.mktemp("fid") / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(net.state_dict(), path)
    return str(path)


@pytest.fixture()
def pytorch_fid_inception(monkeypatch, random_inception_weights):
    """pytorch-fid's own InceptionV3, fed our random weights instead of its download."""
    state = torch.load(random_inception_weights, weights_only=True)
    monkeypatch.setattr(inception, "load_state_dict_from_url", lambda *a, **k: state)

    def build(dims: int) -> inception.InceptionV3:
        return inception.InceptionV3([inception.InceptionV3.BLOCK_INDEX_BY_DIM[dims]]).eval()

    return build


def _png_images(folder, n: int, brightness: float, seed: int) -> tuple[list[str], torch.Tensor]:
    """`n` random 48 px PNGs; returns their paths and the same pixels as "n 3 h w" in [-1, 1]."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255 * brightness, size=(n, 6, 6, 3))
    pixels = np.kron(coarse, np.ones((1, 8, 8, 1))) + rng.uniform(0, 40, size=(n, 48, 48, 3))
    pixels = pixels.clip(0, 255).astype(np.uint8)
    paths = []
    for i, image in enumerate(pixels):
        paths.append(str(folder / f"{seed}_{i}.png"))
        Image.fromarray(image).save(paths[-1])
    tensor = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255 * 2 - 1
    return paths, tensor


def test_fid_network_equals_pytorch_fid_inception(
    tmp_path, random_inception_weights, pytorch_fid_inception
) -> None:
    """The 2048-d pool features of our locally built network equal pytorch-fid's."""
    _, images = _png_images(tmp_path, 1, 1.0, seed=0)
    ours = FID(weights_path=random_inception_weights).feature_extractor
    with torch.no_grad():
        expected = pytorch_fid_inception(2048)((images + 1) / 2)[0].flatten(1)
        got = ours(images)
    assert got.shape == (1, 2048)
    assert expected.std() > 0.01
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::scipy.linalg.LinAlgWarning")
def test_fid_equals_pytorch_fid_pipeline(
    tmp_path, random_inception_weights, pytorch_fid_inception
) -> None:
    """Same weights, same PNGs: our FID equals calculate_activation_statistics +
    calculate_frechet_distance. 64-d first-block features keep this fast (24 images per side:
    rank-deficient covariances, the same math on both sides); the 2048-d network is compared
    feature by feature above."""
    real_paths, real = _png_images(tmp_path, 24, 1.0, seed=1)
    fake_paths, fake = _png_images(tmp_path, 24, 0.7, seed=2)
    model = pytorch_fid_inception(64)
    mu1, s1 = fid_score.calculate_activation_statistics(real_paths, model, 12, 64, "cpu", 0)
    mu2, s2 = fid_score.calculate_activation_statistics(fake_paths, model, 12, 64, "cpu", 0)
    expected = fid_score.calculate_frechet_distance(mu1, s1, mu2, s2)

    fid = FID(weights_path=random_inception_weights, dims=64)
    for chunk in real.split(10):
        fid.update(chunk, real=True)
    for chunk in fake.split(10):
        fid.update(chunk, real=False)
    assert expected > 1e-3
    assert fid.compute().item() == pytest.approx(expected, rel=1e-3)


# ---------------------------------------------------------------- FID / FVD behaviour


def _videos(n: int, seed: int, shift: float = 0.0, t: int = 16) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, t, 3, 16, 16, generator=g) * 2 - 1 + shift).clamp(-1, 1)


@pytest.mark.filterwarnings("ignore:The `disp` argument is deprecated:DeprecationWarning")
def test_fvd_matches_stylegan_v_statistics() -> None:
    """Biased covariance (FeatureStats) and m + Tr(s1 + s2 - 2 sqrtm(s1 s2)) in float64."""
    extractor = TinyVideoFeatures(num_features=16)
    real, fake = _videos(48, 0), _videos(48, 1, shift=0.3)
    fvd = FVD(feature_extractor=extractor)
    fvd.update(real, real=True)
    fvd.update(fake, real=False)

    def stats(videos):
        f = extractor(videos.permute(0, 2, 1, 3, 4)).double().numpy()
        mean = f.mean(0)
        return mean, f.T @ f / len(f) - np.outer(mean, mean)

    (mu_r, s_r), (mu_g, s_g) = stats(real), stats(fake)
    s, _ = scipy.linalg.sqrtm(s_g @ s_r, disp=False)
    expected = float(np.real(np.square(mu_g - mu_r).sum() + np.trace(s_g + s_r - s * 2)))
    assert expected > 1e-4
    assert fvd.compute().item() == pytest.approx(expected, rel=1e-6)


def test_fvd_gives_the_extractor_b_3_t_h_w_and_identical_sets_give_zero() -> None:
    seen = []

    class Recorder(TinyVideoFeatures):
        def forward(self, videos):
            seen.append(tuple(videos.shape))
            return super().forward(videos)

    fvd = FVD(feature_extractor=Recorder(num_features=8), num_frames=4)
    videos = _videos(20, 3, t=4)
    fvd.update(videos, real=True)
    fvd.update(videos, real=False)
    assert seen == [(20, 3, 4, 16, 16), (20, 3, 4, 16, 16)]
    assert fvd.compute().item() == pytest.approx(0.0, abs=1e-6)


def test_fid_identical_sets_give_zero_and_different_sets_do_not() -> None:
    fid = FID(feature_extractor=TinyImageFeatures(num_features=8))
    images = _videos(1, 0, t=40)[0]
    fid.update(images, real=True)
    fid.update(images, real=False)
    assert fid.compute().item() == pytest.approx(0.0, abs=1e-6)
    fid.update((images + 0.5).clamp(-1, 1), real=False)
    assert fid.compute().item() > 1e-4


@pytest.mark.parametrize("kind", ["fid", "fvd"])
def test_merging_halves_equals_one_metric_on_all(kind: str) -> None:
    """DDP-style: states are sums, so two metrics fed halves and merged equal one fed all."""
    if kind == "fid":
        make = lambda: FID(feature_extractor=TinyImageFeatures(num_features=8))  # noqa: E731
        real, fake = _videos(1, 0, t=30)[0], _videos(1, 1, t=30, shift=0.2)[0]
    else:
        make = lambda: FVD(feature_extractor=TinyVideoFeatures(num_features=8), num_frames=4)  # noqa: E731
        real, fake = _videos(30, 0, t=4), _videos(30, 1, t=4, shift=0.2)
    whole, first, second = make(), make(), make()
    whole.update(real, real=True)
    whole.update(fake, real=False)
    first.update(real[:13], real=True)
    first.update(fake[:20], real=False)
    second.update(real[13:], real=True)
    second.update(fake[20:], real=False)
    first.merge_state(second)
    assert first.real_n.item() == 30 and first.fake_n.item() == 30
    # features computed in batches of 13/17 and of 30 differ in their last bits
    assert first.compute().item() == pytest.approx(whole.compute().item(), rel=1e-5)


class _FakeI3D(nn.Module):
    """Records how it is called: feature 0 the input mean, 1 whether it is uint8, 2-4 the flags
    rescale, resize, return_features, 5 the channel count, 6 the frame count."""

    def forward(
        self,
        x: torch.Tensor,
        rescale: bool = False,
        resize: bool = False,
        return_features: bool = False,
    ) -> torch.Tensor:
        out = torch.zeros(x.shape[0], 400)
        out[:, 0] = x.float().flatten(1).mean(1)
        out[:, 1] = float(x.dtype == torch.uint8)
        out[:, 2] = float(rescale)
        out[:, 3] = float(resize)
        out[:, 4] = float(return_features)
        out[:, 5] = float(x.shape[1])
        out[:, 6] = float(x.shape[2])
        return out


def test_fvd_calls_the_i3d_torchscript_like_stylegan_v(tmp_path) -> None:
    """uint8 "b 3 t h w" frames, rescale=True, resize=True, return_features=True."""
    path = tmp_path / "i3d_torchscript.pt"
    torch.jit.script(_FakeI3D()).save(str(path))
    fvd = FVD(weights_path=path)
    videos = torch.full((2, 16, 3, 8, 8), 0.5)
    features = fvd.feature_extractor(videos.permute(0, 2, 1, 3, 4))
    # 0.5 -> 0.5 * 127.5 + 128 = 191.75, truncated to 191 like StyleGAN-V's generator output
    assert features[0, :7].tolist() == [191.0, 1.0, 1.0, 1.0, 1.0, 3.0, 16.0]
    fvd.update(videos, real=True)
    assert fvd.real_n.item() == 2


def test_missing_weight_files_name_the_file_and_the_variable(monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SGVIDEO_FID_WEIGHTS", raising=False)
    monkeypatch.delenv("SGVIDEO_I3D_WEIGHTS", raising=False)
    fid_message = r"pt_inception-2015-12-05-6726825d\.pth.*SGVIDEO_FID_WEIGHTS"
    with pytest.raises(FileNotFoundError, match=fid_message):
        FID()
    with pytest.raises(FileNotFoundError, match=r"i3d_torchscript\.pt.*SGVIDEO_I3D_WEIGHTS"):
        FVD()
    monkeypatch.setenv("SGVIDEO_I3D_WEIGHTS", str(tmp_path / "elsewhere.pt"))
    with pytest.raises(FileNotFoundError, match="elsewhere.pt"):
        FVD()


def test_bad_inputs_get_clear_errors() -> None:
    fvd = FVD(feature_extractor=TinyVideoFeatures(num_features=8), num_frames=16)
    with pytest.raises(ValueError, match="set up for 16-frame clips, got 8"):
        fvd.update(_videos(2, 0, t=8), real=True)
    with pytest.raises(ValueError, match="'b t 3 h w'"):
        fvd.update(torch.zeros(2, 3, 16, 8, 8), real=True)
    fid = FID(feature_extractor=TinyImageFeatures(num_features=8))
    with pytest.raises(ValueError, match="'b 3 h w'"):
        fid.update(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), real=True)
    fid.update(torch.zeros(1, 3, 8, 8), real=True)
    with pytest.raises(ValueError, match="at least 2 real samples, got 1"):
        fid.compute()
    with pytest.raises(ValueError, match="not both"):
        FID(weights_path="x.pth", feature_extractor=TinyImageFeatures())
