"""stylegan2_ops: values against literal definitions, derivatives, and path selection."""

from __future__ import annotations

import itertools
import warnings
from collections import Counter
from types import SimpleNamespace

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

import stylegan2_ops
from stylegan2_ops import FusedLeakyReLU, backend, build, cuda, fused_leaky_relu, ops, upfirdn2d
from stylegan2_ops.reference import fused_leaky_relu_reference, upfirdn2d_reference
from stylegan2_ops.shapes import parse_pad

PADS = [(0, 0), (1, 1), (2, 1), (1, 2), (3, 3), (-1, 2), (2, -1), (2, 1, 0, -1), (-1, 0, 3, 1)]
# (up, down, pad) sets for the derivative checks: StyleGAN2's upsample, blur and downsample, plus
# a cropping, non-square one.
GRAD_CASES = [(2, 1, (2, 1)), (1, 1, (1, 1)), (1, 2, (1, 1)), (2, 2, (1, -1, 2, 0))]
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


_K1 = torch.tensor([1.0, 3.0, 3.0, 1.0])
BLUR_4X4 = torch.outer(_K1, _K1) / 64  # StyleGAN2's blur kernel, DC gain 1


def _kernel(kh: int = 4, kw: int = 3) -> torch.Tensor:
    """A deliberately asymmetric kernel, so a flipped or transposed kernel shows."""
    return torch.randn(kh, kw, dtype=torch.float64)


def _away_from_zero(*shape: int) -> torch.Tensor:
    """Values with |v| >= 0.1: finite differences never straddle the leaky ReLU's kink."""
    v = torch.rand(*shape, dtype=torch.float64) + 0.1
    return torch.where(torch.rand(*shape) < 0.5, -v, v)


class FakeExtension:
    """The compiled module's contract, computed on the CPU with the reference ops."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def upfirdn2d(self, x, kernel, up, down, pad_x0, pad_x1, pad_y0, pad_y1):
        self.calls["upfirdn2d"] += 1
        return upfirdn2d_reference(x, kernel, up, down, (pad_x0, pad_x1, pad_y0, pad_y1))

    def bias_act(self, x, bias, ref, negative_slope, scale):
        self.calls["bias_act"] += 1
        z = x + bias.view(1, -1, *[1] * (x.ndim - 2)) if bias.numel() else x
        positive = ref > 0 if ref.numel() else z > 0
        return torch.where(positive, z, z * negative_slope) * scale


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def fresh_backend(monkeypatch):
    """A process state where the extension was never built; returns a compile-call counter."""
    monkeypatch.setattr(backend, "_STATE", backend._ExtensionState())
    monkeypatch.delenv("SGVIDEO_OPS", raising=False)
    return Counter()


@pytest.fixture
def fake_extension(fresh_backend, monkeypatch) -> FakeExtension:
    ext = FakeExtension()

    def compile_extension():
        fresh_backend["compile"] += 1
        return ext

    monkeypatch.setattr(build, "compile_extension", compile_extension)
    return ext


@pytest.fixture
def failing_build(fresh_backend, monkeypatch) -> Counter:
    def compile_extension():
        fresh_backend["compile"] += 1
        raise OSError("nvcc not found")

    monkeypatch.setattr(build, "compile_extension", compile_extension)
    return fresh_backend


def _on_cuda_device() -> SimpleNamespace:
    """Stands in for a CUDA tensor where only the device is looked at (backend_for)."""
    return SimpleNamespace(device=torch.device("cuda", 0))


# --- upfirdn2d values ---------------------------------------------------------------------


@pytest.mark.parametrize(("up", "down", "pad"), list(itertools.product([1, 2], [1, 2], PADS)))
def test_upfirdn2d_matches_literal_definition(up, down, pad):
    x = torch.randn(2, 3, 7, 10, dtype=torch.float64)
    kernel = _kernel()
    out = upfirdn2d(x, kernel, up=up, down=down, pad=pad)
    x0, x1, y0, y1 = parse_pad(pad)
    out_h, out_w = (7 * up + y0 + y1 - 4) // down + 1, (10 * up + x0 + x1 - 3) // down + 1
    assert out.shape == (2, 3, out_h, out_w)
    torch.testing.assert_close(out, upfirdn2d_reference(x, kernel, up, down, (x0, x1, y0, y1)))


def test_upfirdn2d_by_hand():
    """Numbers worked out by hand, independent of any formulation (one row, up=2)."""
    x = torch.tensor([[[[1.0, 2.0]]]], dtype=torch.float64)
    kernel = torch.tensor([[1.0, 10.0, 100.0]], dtype=torch.float64)
    # zero insertion: rows [1, 0, 2, 0] and [0, 0, 0, 0]; width pad (2, 1): [0, 0, 1, 0, 2, 0, 0];
    # true convolution with [1, 10, 100] = sliding dot product with [100, 10, 1].
    row = torch.tensor([1.0, 10.0, 102.0, 20.0, 200.0], dtype=torch.float64)
    out = upfirdn2d(x, kernel, up=2, down=1, pad=(2, 1, 0, 0))
    torch.testing.assert_close(out[0, 0], torch.stack([row, torch.zeros(5, dtype=torch.float64)]))
    strided = upfirdn2d(x, kernel, up=2, down=2, pad=(2, 1, 0, 0))
    torch.testing.assert_close(strided[0, 0], row[None, ::2])


def test_upfirdn2d_of_an_impulse_is_the_kernel():
    x = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
    x[0, 0, 1, 1] = 1.0
    kernel = torch.randn(3, 3, dtype=torch.float64)
    torch.testing.assert_close(upfirdn2d(x, kernel, pad=(1, 1))[0, 0], kernel)


def test_upfirdn2d_stylegan2_shapes_and_dc_gain():
    """rosinality's Upsample (factor 2, pad (2, 1)) and Blur (pad (1, 1)) keep a constant image."""
    x = torch.full((2, 3, 8, 8), 0.5)
    up = upfirdn2d(x, BLUR_4X4 * 4, up=2, pad=(2, 1))
    assert up.shape == (2, 3, 16, 16)
    torch.testing.assert_close(up[:, :, 2:-2, 2:-2], torch.full((2, 3, 12, 12), 0.5))
    blurred = upfirdn2d(torch.full((2, 3, 17, 17), 0.5), BLUR_4X4, pad=(1, 1))
    assert blurred.shape == (2, 3, 16, 16)
    torch.testing.assert_close(blurred[:, :, 2:-2, 2:-2], torch.full((2, 3, 12, 12), 0.5))


def test_upfirdn2d_casts_kernel_to_input_dtype():
    x = torch.randn(1, 2, 6, 6, dtype=torch.bfloat16)
    out = upfirdn2d(x, torch.ones(2, 2), down=2)
    assert out.dtype == torch.bfloat16
    expected = upfirdn2d(x.float(), torch.ones(2, 2), down=2)
    torch.testing.assert_close(out.float(), expected, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"x": torch.zeros(3, 8, 8)}, ValueError, "x must be 4-D"),
        ({"kernel": torch.ones(4)}, ValueError, "kernel must be 2-D"),
        ({"pad": (1, 2, 3)}, ValueError, "pad must be (p0, p1) or (x0, x1, y0, y1)"),
        ({"pad": (1.5, 1)}, TypeError, "pad must be an int"),
        ({"up": 0}, ValueError, "up and down must be >= 1"),
        ({"pad": (-4, -4)}, ValueError, "empty output"),
    ],
)
def test_upfirdn2d_rejects_bad_arguments(kwargs, error, message):
    args = {"x": torch.zeros(1, 1, 8, 8), "kernel": torch.ones(4, 4)} | kwargs
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        upfirdn2d(**args)


# --- upfirdn2d derivatives ----------------------------------------------------------------


@pytest.mark.parametrize(("up", "down", "pad"), GRAD_CASES)
def test_upfirdn2d_first_and_second_derivatives(up, down, pad):
    x = torch.randn(1, 2, 4, 3, dtype=torch.float64, requires_grad=True)
    kernel = _kernel(3, 2).requires_grad_()
    fn = lambda x, kernel: upfirdn2d(x, kernel, up=up, down=down, pad=pad)
    assert gradcheck(fn, (x, kernel))
    assert gradgradcheck(fn, (x, kernel))


# --- fused leaky relu ---------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 5, 3, 4), (3, 5)])
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize(("negative_slope", "scale"), [(0.2, 2**0.5), (0.0, 1.0), (0.1, -1.5)])
def test_fused_leaky_relu_matches_formula(shape, with_bias, negative_slope, scale):
    x = torch.randn(*shape, dtype=torch.float64)
    bias = torch.randn(shape[1], dtype=torch.float64) if with_bias else None
    out = fused_leaky_relu(x, bias, negative_slope=negative_slope, scale=scale)
    expected = fused_leaky_relu_reference(x, bias, negative_slope, scale)
    torch.testing.assert_close(out, expected)


def test_fused_leaky_relu_defaults_are_stylegan2():
    x, bias = torch.randn(2, 3, 4, 4), torch.randn(3)
    z = x + bias.view(1, 3, 1, 1)
    torch.testing.assert_close(fused_leaky_relu(x, bias), torch.where(z > 0, z, 0.2 * z) * 2**0.5)


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize(("negative_slope", "scale"), [(0.2, 2**0.5), (0.1, -1.5)])
def test_fused_leaky_relu_first_and_second_derivatives(with_bias, negative_slope, scale):
    x = _away_from_zero(2, 3, 2, 2).requires_grad_()
    inputs = (x, torch.zeros(3, dtype=torch.float64, requires_grad=True)) if with_bias else (x,)
    fn = lambda *args: fused_leaky_relu(*args, negative_slope=negative_slope, scale=scale)
    assert gradcheck(fn, inputs)
    assert gradgradcheck(fn, inputs)


def test_fused_leaky_relu_rejects_wrong_bias():
    with pytest.raises(ValueError, match=r"bias must have shape \(x.shape\[1\],\), got \(4,\)"):
        fused_leaky_relu(torch.zeros(2, 3, 5, 5), torch.zeros(4))


def test_fused_leaky_relu_module_is_rosinality_compatible():
    layer = FusedLeakyReLU(6)
    assert [(n, tuple(p.shape)) for n, p in layer.named_parameters()] == [("bias", (6,))]
    state = {"bias": torch.randn(6)}
    layer.load_state_dict(state, strict=True)
    x = torch.randn(2, 6, 3, 3)
    torch.testing.assert_close(layer(x), fused_leaky_relu_reference(x, state["bias"], 0.2, 2**0.5))
    no_bias = FusedLeakyReLU(6, bias=False, negative_slope=0.1, scale=1.0)
    assert no_bias.bias is None and not no_bias.state_dict()
    torch.testing.assert_close(no_bias(x), fused_leaky_relu_reference(x, None, 0.1, 1.0))


# --- SGVIDEO_OPS and the build ------------------------------------------------------------


def test_native_mode_never_builds(failing_build, monkeypatch):
    monkeypatch.setenv("SGVIDEO_OPS", "native")
    assert stylegan2_ops.ops_mode() == "native"
    assert stylegan2_ops.backend_for(torch.zeros(1)) == "native"
    assert stylegan2_ops.backend_for(_on_cuda_device()) == "native"
    assert failing_build["compile"] == 0


def test_auto_mode_uses_native_on_cpu_without_building(failing_build):
    assert stylegan2_ops.ops_mode() == "auto"
    assert stylegan2_ops.backend_for(torch.zeros(1)) == "native"
    upfirdn2d(torch.zeros(1, 1, 4, 4), torch.ones(2, 2))
    assert failing_build["compile"] == 0


def test_invalid_mode_is_a_clear_error(fresh_backend, monkeypatch):
    monkeypatch.setenv("SGVIDEO_OPS", "gpu")
    message = r"SGVIDEO_OPS='gpu' is not valid: use one of auto, native, cuda"
    with pytest.raises(ValueError, match=message):
        stylegan2_ops.backend_for(torch.zeros(1))
    with pytest.raises(ValueError, match=message):
        fused_leaky_relu(torch.zeros(1, 2), None)


def test_cuda_mode_rejects_cpu_tensors(fake_extension, monkeypatch):
    monkeypatch.setenv("SGVIDEO_OPS", "cuda")
    with pytest.raises(RuntimeError, match="SGVIDEO_OPS=cuda needs CUDA tensors, got one on cpu"):
        upfirdn2d(torch.zeros(1, 1, 4, 4), torch.ones(2, 2))


def test_cuda_mode_fails_loudly_when_the_build_fails(failing_build, monkeypatch):
    monkeypatch.setenv("SGVIDEO_OPS", "CUDA")
    message = "SGVIDEO_OPS=cuda: could not build .* CUDA kernels: OSError: nvcc not found"
    for _ in range(2):  # the failure is remembered: one build attempt per process
        with pytest.raises(RuntimeError, match=message):
            stylegan2_ops.backend_for(_on_cuda_device())
    assert failing_build["compile"] == 1


@pytest.mark.parametrize("build", ["fake_extension", "failing_build"])
def test_auto_mode_is_native_on_cuda_without_building_or_warning(build, request):
    request.getfixturevalue(build)  # whether the build would work or fail, auto never tries it
    compiles = request.getfixturevalue("fresh_backend")
    assert stylegan2_ops.ops_mode() == "auto"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert stylegan2_ops.backend_for(_on_cuda_device()) == "native"
    assert compiles["compile"] == 0


def test_cuda_mode_builds_once_and_uses_the_extension(fake_extension, fresh_backend, monkeypatch):
    monkeypatch.setenv("SGVIDEO_OPS", "cuda")
    assert stylegan2_ops.backend_for(_on_cuda_device()) == "cuda"
    assert stylegan2_ops.backend_for(_on_cuda_device()) == "cuda"
    assert fresh_backend["compile"] == 1


def test_build_is_cached_per_source_version_under_torch_extensions_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    name = build.extension_name()
    assert name.startswith("sgvideo_stylegan2_ops_") and name == build.extension_name()
    assert build.build_directory() == tmp_path / name
    seen = {}
    monkeypatch.setattr("torch.utils.cpp_extension.load", lambda **kw: seen.update(kw) or "module")
    assert build.compile_extension() == "module"
    assert seen["name"] == name and seen["build_directory"] == str(tmp_path / name)
    assert (tmp_path / name).is_dir()
    assert sorted(p.split("/")[-1] for p in seen["sources"]) == sorted(build.SOURCES)
    assert all((build.CSRC / s).is_file() for s in build.SOURCES)


# --- the CUDA autograd glue, run on the CPU against a fake extension -----------------------


@pytest.mark.parametrize(("up", "down", "pad"), GRAD_CASES)
def test_cuda_upfirdn2d_glue_matches_native_with_derivatives(fake_extension, up, down, pad):
    x = torch.randn(1, 2, 4, 3, dtype=torch.float64, requires_grad=True)
    kernel = _kernel(3, 2)
    pad4 = parse_pad(pad)
    torch.testing.assert_close(
        cuda.upfirdn2d_cuda(x, kernel, up, down, pad4),
        upfirdn2d_reference(x, kernel, up, down, pad4),
    )
    fn = lambda x: cuda.upfirdn2d_cuda(x, kernel, up, down, pad4)
    assert gradcheck(fn, (x,))
    assert gradgradcheck(fn, (x,))
    assert fake_extension.calls["upfirdn2d"] > 0


@pytest.mark.parametrize("with_bias", [True, False])
def test_cuda_fused_leaky_relu_glue_matches_native_with_derivatives(fake_extension, with_bias):
    x = _away_from_zero(2, 3, 2, 2).requires_grad_()
    bias = torch.zeros(3, dtype=torch.float64, requires_grad=True) if with_bias else None
    expected = fused_leaky_relu_reference(x, bias, 0.2, 2**0.5)
    torch.testing.assert_close(cuda.fused_leaky_relu_cuda(x, bias, 0.2, 2**0.5), expected)
    inputs = (x, bias) if with_bias else (x,)
    fn = lambda x, bias=None: cuda.fused_leaky_relu_cuda(x, bias, 0.2, 2**0.5)
    assert gradcheck(fn, inputs)
    assert gradgradcheck(fn, inputs)
    assert fake_extension.calls["bias_act"] > 0


def test_public_ops_dispatch_to_the_extension(fake_extension, monkeypatch):
    monkeypatch.setattr(ops, "backend_for", lambda tensor: "cuda")
    x = torch.randn(1, 2, 6, 6, dtype=torch.float64)
    upfirdn2d(x, _kernel(), up=2, pad=(2, 1))
    fused_leaky_relu(x, torch.zeros(2, dtype=torch.float64))
    assert fake_extension.calls == Counter(upfirdn2d=1, bias_act=1)
    # cases the kernels do not cover take the native path
    upfirdn2d(x, _kernel().requires_grad_(), up=2, pad=(2, 1))
    fused_leaky_relu(x, None, scale=-1.0)
    assert fake_extension.calls == Counter(upfirdn2d=1, bias_act=1)


# --- the real kernels (need a GPU) --------------------------------------------------------


def _both_paths(monkeypatch, fn, *inputs):
    """fn's value, gradients and gradients of the gradient norm under SGVIDEO_OPS=cuda / native."""
    results = {}
    for mode in ("cuda", "native"):
        monkeypatch.setenv("SGVIDEO_OPS", mode)
        leaves = [t.detach().clone().requires_grad_() for t in inputs]
        out = fn(*leaves)
        grads = torch.autograd.grad((out * out).sum(), leaves, create_graph=True)
        grad_grads = torch.autograd.grad(sum((g * g).sum() for g in grads), leaves)
        results[mode] = (out.detach(), *[g.detach() for g in grads], *grad_grads)
    return results["cuda"], results["native"]


def _assert_all_close(compiled, native, dtype):
    tolerance = {"rtol": 1e-4, "atol": 1e-4} if dtype == torch.float32 else {}
    for a, b in zip(compiled, native, strict=True):
        torch.testing.assert_close(a, b, **tolerance)


@pytest.mark.cuda
@needs_cuda
def test_auto_mode_runs_the_native_ops_on_a_gpu(failing_build):
    x = torch.randn(1, 2, 8, 8, device="cuda")
    assert stylegan2_ops.backend_for(x) == "native"
    up = upfirdn2d(x, BLUR_4X4.to("cuda") * 4, up=2, pad=(2, 1))
    out = fused_leaky_relu(up, torch.zeros(2, device="cuda"))
    assert out.shape == (1, 2, 16, 16) and out.is_cuda and out.isfinite().all()
    assert failing_build["compile"] == 0


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize(("up", "down", "pad"), [*GRAD_CASES, (2, 1, (1, 1)), (1, 1, (2, 2))])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compiled_upfirdn2d_matches_native(monkeypatch, up, down, pad, dtype):
    x = torch.randn(3, 5, 19, 13, device="cuda", dtype=dtype)
    kernel = torch.randn(4, 4, device="cuda", dtype=dtype)
    monkeypatch.setenv("SGVIDEO_OPS", "cuda")
    assert stylegan2_ops.backend_for(x) == "cuda"
    fn = lambda x: upfirdn2d(x, kernel, up=up, down=down, pad=pad)
    _assert_all_close(*_both_paths(monkeypatch, fn, x), dtype)


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("shape", [(4, 7, 9, 5), (6, 7)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compiled_fused_leaky_relu_matches_native(monkeypatch, shape, dtype):
    x = torch.randn(*shape, device="cuda", dtype=dtype)
    bias = torch.randn(shape[1], device="cuda", dtype=dtype)
    _assert_all_close(*_both_paths(monkeypatch, fused_leaky_relu, x, bias), dtype)


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_compiled_ops_in_half_precision(monkeypatch, dtype):
    x = torch.randn(2, 8, 17, 17, device="cuda", dtype=dtype)
    kernel, bias = BLUR_4X4.to("cuda") * 4, torch.randn(8, device="cuda")
    results = {}
    for mode in ("cuda", "native"):
        monkeypatch.setenv("SGVIDEO_OPS", mode)
        blurred = upfirdn2d(x, kernel, up=2, pad=(2, 1))
        results[mode] = (blurred, fused_leaky_relu(blurred, bias))
    for a, b in zip(results["cuda"], results["native"], strict=True):
        assert a.dtype == dtype
        torch.testing.assert_close(a.float(), b.float(), rtol=2e-2, atol=2e-2)
