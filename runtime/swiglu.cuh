// silu(g) * u: the SwiGLU of swiglu_kernel (ops_cuda.cu) and of the gate/up GEMV's epilogue
// (gemv.cu), one function so that both compute the same bits. For .cu files.
#pragma once

namespace kvcomp {

__device__ __forceinline__ float silu_mul(float g, float u) {
  return g / (1.0f + expf(-g)) * u;
}

}  // namespace kvcomp
