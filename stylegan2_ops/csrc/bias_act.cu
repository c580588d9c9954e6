// Fused bias + leaky ReLU + scale (elementwise), also used for its own gradient.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>


namespace {

// bias and ref may be null; the bias of element i is bias[(i / step) % channels].
template <typename scalar_t>
__global__ void bias_act_kernel(scalar_t* __restrict__ out, const scalar_t* __restrict__ x,
                                const scalar_t* __restrict__ bias,
                                const scalar_t* __restrict__ ref, const int64_t total,
                                const int64_t step, const int64_t channels,
                                const at::opmath_type<scalar_t> negative_slope,
                                const at::opmath_type<scalar_t> scale) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += stride) {
    acc_t v = static_cast<acc_t>(x[i]);
    if (bias != nullptr) v += static_cast<acc_t>(bias[(i / step) % channels]);
    const bool positive = ref != nullptr ? static_cast<acc_t>(ref[i]) > acc_t(0) : v > acc_t(0);
    out[i] = static_cast<scalar_t>((positive ? v : v * negative_slope) * scale);
  }
}

}  // namespace

at::Tensor bias_act_cuda(const at::Tensor& x, const at::Tensor& bias,
                            const at::Tensor& ref, double negative_slope, double scale) {
  auto out = at::empty_like(x, at::MemoryFormat::Contiguous);
  const int64_t total = x.numel();
  if (total == 0) return out;
  const int64_t channels = x.dim() >= 2 ? x.size(1) : 1;
  const int64_t step = x.dim() >= 2 ? total / (x.size(0) * channels) : 1;
  const int threads = 256;
  const int64_t wanted = (total + threads - 1) / threads;
  const unsigned blocks = static_cast<unsigned>(wanted < 65536 ? wanted : 65536);
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "bias_act_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    bias_act_kernel<scalar_t><<<blocks, threads, 0, stream>>>(
        out.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(),
        bias.numel() > 0 ? bias.data_ptr<scalar_t>() : nullptr,
        ref.numel() > 0 ? ref.data_ptr<scalar_t>() : nullptr, total, step, channels,
        static_cast<acc_t>(negative_slope), static_cast<acc_t>(scale));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}
