// Python bindings of the stylegan2_ops CUDA kernels: argument checks here, kernels in the .cu files.
#include <torch/extension.h>

#include <c10/cuda/CUDAGuard.h>

torch::Tensor upfirdn2d_cuda(const torch::Tensor& x, const torch::Tensor& kernel, int64_t up,
                             int64_t down, int64_t pad_x0, int64_t pad_x1, int64_t pad_y0,
                             int64_t pad_y1);

torch::Tensor bias_act_cuda(const torch::Tensor& x, const torch::Tensor& bias,
                            const torch::Tensor& ref, double negative_slope, double scale);

// x "b c h w"; kernel (kh, kw) applied as a true convolution after zero-insertion upsampling by
// `up` and padding (negative pads crop), then every `down`-th sample is kept.
torch::Tensor upfirdn2d(const torch::Tensor& x, const torch::Tensor& kernel, int64_t up,
                        int64_t down, int64_t pad_x0, int64_t pad_x1, int64_t pad_y0,
                        int64_t pad_y1) {
  TORCH_CHECK(x.is_cuda() && kernel.is_cuda(), "upfirdn2d: x and kernel must be CUDA tensors");
  TORCH_CHECK(x.device() == kernel.device(), "upfirdn2d: x and kernel on different devices");
  TORCH_CHECK(x.dim() == 4, "upfirdn2d: x must be 4-D (b c h w), got ", x.dim(), "-D");
  TORCH_CHECK(kernel.dim() == 2, "upfirdn2d: kernel must be 2-D, got ", kernel.dim(), "-D");
  TORCH_CHECK(up >= 1 && down >= 1, "upfirdn2d: up and down must be >= 1");
  const c10::cuda::CUDAGuard guard(x.device());
  return upfirdn2d_cuda(x.contiguous(), kernel.contiguous(), up, down, pad_x0, pad_x1, pad_y0,
                        pad_y1);
}

// out = leaky_relu(x + bias[channel]) * scale; with a non-empty `ref` the sign test uses ref
// (the forward output) instead, which is the gradient of the forward op applied to x.
torch::Tensor bias_act(const torch::Tensor& x, const torch::Tensor& bias, const torch::Tensor& ref,
                       double negative_slope, double scale) {
  TORCH_CHECK(x.is_cuda(), "bias_act: x must be a CUDA tensor");
  if (bias.numel() > 0) {
    TORCH_CHECK(bias.device() == x.device() && bias.scalar_type() == x.scalar_type(),
                "bias_act: bias must match x in device and dtype");
    TORCH_CHECK(x.dim() >= 2 && bias.dim() == 1 && bias.size(0) == x.size(1),
                "bias_act: bias must have x.size(1) elements");
  }
  if (ref.numel() > 0) {
    TORCH_CHECK(ref.device() == x.device() && ref.scalar_type() == x.scalar_type() &&
                    ref.sizes() == x.sizes(),
                "bias_act: ref must match x in device, dtype and shape");
  }
  const c10::cuda::CUDAGuard guard(x.device());
  return bias_act_cuda(x.contiguous(), bias.contiguous(), ref.contiguous(), negative_slope, scale);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("upfirdn2d", &upfirdn2d, "upsample, FIR filter, downsample (CUDA)", py::arg("x"),
        py::arg("kernel"), py::arg("up"), py::arg("down"), py::arg("pad_x0"), py::arg("pad_x1"),
        py::arg("pad_y0"), py::arg("pad_y1"));
  m.def("bias_act", &bias_act, "bias + leaky ReLU + scale, or its gradient (CUDA)", py::arg("x"),
        py::arg("bias"), py::arg("ref"), py::arg("negative_slope"), py::arg("scale"));
}
