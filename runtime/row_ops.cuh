// Pieces of the row kernels of ops_cuda.cu; silu_mul is shared with the gate/up GEMV's SwiGLU
// epilogue (gemv.cu), so that both compute the same bits. For .cu files.
#pragma once

#include "runtime/cuda_types.cuh"

namespace kvcomp {

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets it.
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float part[32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();
  if (lane == 0) part[warp] = v;
  __syncthreads();
  const int nw = blockDim.x / 32;
  v = lane < nw ? part[lane] : 0.0f;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// out[j] = T(x[j] * rsqrt(mean(x^2) + eps) * w[j]) for one row of dim values, by the whole
// block. V = 4: dim % 4 == 0, 16-byte loads; else V = 1.
template <typename T, int V>
__device__ __forceinline__ void rmsnorm_row(const float* x, const T* w, int dim, float eps,
                                            T* out) {
  auto load4 = [](const float* p) { return *reinterpret_cast<const float4*>(p); };
  auto load1 = [](const float* p) { return *p; };
  float ss = 0;
#pragma unroll 4
  for (int j = threadIdx.x * V; j < dim; j += blockDim.x * V) {
    if constexpr (V == 4) {
      const float4 v = load4(x + j);
      ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
    } else {
      const float v = load1(x + j);
      ss += v * v;
    }
  }
  ss = block_sum(ss);
  const float r = rsqrtf(ss / dim + eps);
  for (int j = threadIdx.x * V; j < dim; j += blockDim.x * V) {
    if constexpr (V == 4) {
      const float4 v = load4(x + j);
      const float f[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
      for (int k = 0; k < 4; ++k) out[j + k] = from_f<T>(f[k] * r * to_f(w[j + k]));
    } else {
      out[j] = from_f<T>(load1(x + j) * r * to_f(w[j]));
    }
  }
}

// silu(g) * u, as the SwiGLU kernel and the gate/up GEMV's epilogue compute it.
__device__ __forceinline__ float silu_mul(float g, float u) {
  return g / (1.0f + expf(-g)) * u;
}

}  // namespace kvcomp
