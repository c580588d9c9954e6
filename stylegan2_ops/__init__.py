"""StyleGAN2's custom ops (rosinality semantics): native PyTorch, or JIT-compiled CUDA kernels.

`SGVIDEO_OPS=auto|native|cuda` picks the implementation: native PyTorch unless it is `cuda`,
which opts in to the compiled kernels (on an H200 they were slower than native); see `backend`.
"""

from .backend import backend_for, ops_mode
from .ops import FusedLeakyReLU, fused_leaky_relu, upfirdn2d

__all__ = ["FusedLeakyReLU", "backend_for", "fused_leaky_relu", "ops_mode", "upfirdn2d"]
