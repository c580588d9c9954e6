// upfirdn2d: one thread per output sample, summing only the taps that land on non-zero
// (non-inserted) samples of the upsampled input.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>


namespace {

struct UpFirDn2dParams {
  int in_h, in_w, out_h, out_w, kernel_h, kernel_w, up, down, pad_x0, pad_y0;
};

// Smallest j >= 0 with (start + j) divisible by up.
__device__ __forceinline__ int first_tap(int start, int up) {
  const int r = start % up;
  return r == 0 ? 0 : (r > 0 ? up - r : -r);
}

template <typename scalar_t>
__global__ void upfirdn2d_kernel(scalar_t* __restrict__ out, const scalar_t* __restrict__ x,
                                 const at::opmath_type<scalar_t>* __restrict__ kernel,
                                 const UpFirDn2dParams p, const int64_t total) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += stride) {
    const int ox = static_cast<int>(i % p.out_w);
    const int oy = static_cast<int>((i / p.out_w) % p.out_h);
    const int64_t plane = i / (static_cast<int64_t>(p.out_w) * p.out_h);
    const scalar_t* src = x + plane * p.in_h * p.in_w;
    // Tap j of output o reads upsampled sample s = o * down + j - pad, weighted by kernel[k-1-j].
    const int sy = oy * p.down - p.pad_y0;
    const int sx = ox * p.down - p.pad_x0;
    const int jx0 = first_tap(sx, p.up);
    acc_t acc = 0;
    for (int jy = first_tap(sy, p.up); jy < p.kernel_h; jy += p.up) {
      const int iy = (sy + jy) / p.up;
      if (iy < 0 || iy >= p.in_h) continue;
      const acc_t* krow = kernel + (p.kernel_h - 1 - jy) * p.kernel_w + (p.kernel_w - 1);
      for (int jx = jx0; jx < p.kernel_w; jx += p.up) {
        const int ix = (sx + jx) / p.up;
        if (ix < 0 || ix >= p.in_w) continue;
        acc += static_cast<acc_t>(src[iy * p.in_w + ix]) * krow[-jx];
      }
    }
    out[i] = static_cast<scalar_t>(acc);
  }
}

}  // namespace

at::Tensor upfirdn2d_cuda(const at::Tensor& x, const at::Tensor& kernel, int64_t up,
                             int64_t down, int64_t pad_x0, int64_t pad_x1, int64_t pad_y0,
                             int64_t pad_y1) {
  UpFirDn2dParams p;
  p.in_h = static_cast<int>(x.size(2));
  p.in_w = static_cast<int>(x.size(3));
  p.kernel_h = static_cast<int>(kernel.size(0));
  p.kernel_w = static_cast<int>(kernel.size(1));
  p.up = static_cast<int>(up);
  p.down = static_cast<int>(down);
  p.pad_x0 = static_cast<int>(pad_x0);
  p.pad_y0 = static_cast<int>(pad_y0);
  p.out_h = static_cast<int>((x.size(2) * up + pad_y0 + pad_y1 - p.kernel_h) / down + 1);
  p.out_w = static_cast<int>((x.size(3) * up + pad_x0 + pad_x1 - p.kernel_w) / down + 1);
  TORCH_CHECK(p.out_h > 0 && p.out_w > 0, "upfirdn2d: empty output (", p.out_h, "x", p.out_w, ")");

  auto out = at::empty({x.size(0), x.size(1), p.out_h, p.out_w}, x.options());
  const int64_t total = out.numel();
  if (total == 0) return out;
  const int threads = 256;
  const int64_t wanted = (total + threads - 1) / threads;
  const unsigned blocks = static_cast<unsigned>(wanted < 65536 ? wanted : 65536);
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "upfirdn2d_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const auto k = kernel.to(c10::CppTypeToScalarType<acc_t>::value).contiguous();
    upfirdn2d_kernel<scalar_t><<<blocks, threads, 0, stream>>>(
        out.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), k.data_ptr<acc_t>(), p, total);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}
