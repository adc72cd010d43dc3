// GPU Llama ops. Each kernel is memory-bound and touches its inputs once: one block per row
// with a block-wide reduction where a row needs one (RMSNorm, log-sum-exp). The kernels of a
// forward step are launched with launch_pdl (runtime/pdl.cuh) and begin with pdl_wait().
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "runtime/cuda_check.h"
#include "runtime/cuda_types.cuh"
#include "runtime/ops_cuda.h"
#include "runtime/pdl.cuh"
#include "runtime/rope.cuh"
#include "runtime/swiglu.cuh"

namespace kvcomp {
namespace {

// Sum over the block (blockDim.x a multiple of 32, at most 1024).
__device__ float block_sum(float v) {
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

__device__ float block_max(float v) {
  __shared__ float part[32];
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();
  if (lane == 0) part[warp] = v;
  __syncthreads();
  const int nw = blockDim.x / 32;
  v = lane < nw ? part[lane] : -INFINITY;
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

template <typename T>
__global__ void embedding_kernel(const T* table, const int* ids, int dim, float* out) {
  pdl_wait();
  pdl_trigger();
  const int64_t row = blockIdx.x;
  const T* src = table + int64_t(ids[row]) * dim;
  for (int j = threadIdx.x; j < dim; j += blockDim.x) out[row * dim + j] = to_f(src[j]);
}

// One block per row; V = 4: dim % 4 == 0, 16-byte loads (a 4096-wide row is one load per thread
// of a 1024-thread block); else V = 1.
template <typename T, int V>
__global__ void rmsnorm_kernel(const float* x, const T* w, const int* rows, int dim, float eps,
                               T* out) {
  pdl_wait();
  pdl_trigger();
  const int64_t i = blockIdx.x;
  const float* xr = x + (rows ? int64_t(rows[i]) : i) * dim;
  T* o = out + i * dim;
  float ss = 0;
#pragma unroll 4
  for (int j = threadIdx.x * V; j < dim; j += blockDim.x * V) {
    if constexpr (V == 4) {
      const float4 v = *reinterpret_cast<const float4*>(xr + j);
      ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
    } else {
      ss += xr[j] * xr[j];
    }
  }
  ss = block_sum(ss);
  const float r = rsqrtf(ss / dim + eps);
  for (int j = threadIdx.x * V; j < dim; j += blockDim.x * V) {
    if constexpr (V == 4) {
      const float4 v = *reinterpret_cast<const float4*>(xr + j);
      const float f[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
      for (int k = 0; k < 4; ++k) o[j + k] = from_f<T>(f[k] * r * to_f(w[j + k]));
    } else {
      o[j] = from_f<T>(xr[j] * r * to_f(w[j]));
    }
  }
}

// One block per (token, group of kRopeHeads heads); thread f of a head rotates the pair
// (f, f + head_dim/2). Enough blocks that a single decode token is not latency-bound.
constexpr int kRopeHeads = 4;
__global__ void rope_kernel(float* qkv, int64_t row_stride, const int* pos, int n_heads,
                            int n_kv_heads, int head_dim, const float* inv_freq) {
  pdl_wait();
  pdl_trigger();
  const int64_t row = blockIdx.x;
  const int half = head_dim / 2;
  const int h0 = blockIdx.y * kRopeHeads;
  const int heads = min(kRopeHeads, n_heads + n_kv_heads - h0);
  float* x = qkv + row * row_stride;
  const float p = float(pos[row]);
  for (int e = threadIdx.x; e < heads * half; e += blockDim.x) {
    const int h = h0 + e / half, f = e % half;
    float* xh = x + int64_t(h) * head_dim;  // k heads follow the q heads
    float a = xh[f], b = xh[f + half];
    rope_rotate(p, inv_freq[f], a, b);
    xh[f] = a;
    xh[f + half] = b;
  }
}

// Four consecutive values per thread (inter % 4 == 0: 16-byte loads), else one. interleaved
// (V = 4 only): gate_up columns come in groups of kGateUpGroup gate then kGateUpGroup up values.
template <typename T, int V>
__global__ void swiglu_kernel(const float* gate_up, int64_t n_total, int inter, bool interleaved,
                              T* out) {
  pdl_wait();
  pdl_trigger();
  for (int64_t e = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) * V; e < n_total;
       e += int64_t(gridDim.x) * blockDim.x * V) {
    const int64_t i = e / inter, j = e % inter;
    float gv[V], uv[V];
    if constexpr (V == 4) {
      static_assert(kGateUpGroup == 4, "one 16-byte load per group");
      const float* g = gate_up + i * 2 * inter + (interleaved ? 2 * j : j);
      const float4 a = *reinterpret_cast<const float4*>(g);
      const float4 b = *reinterpret_cast<const float4*>(g + (interleaved ? 4 : inter));
      gv[0] = a.x, gv[1] = a.y, gv[2] = a.z, gv[3] = a.w;
      uv[0] = b.x, uv[1] = b.y, uv[2] = b.z, uv[3] = b.w;
    } else {
      const float* g = gate_up + i * 2 * inter + j;
      gv[0] = g[0];
      uv[0] = g[inter];
    }
#pragma unroll
    for (int k = 0; k < V; ++k) out[e + k] = from_f<T>(silu_mul(gv[k], uv[k]));
  }
}

__global__ void nll_kernel(const float* logits, const int* targets, int vocab, float* nll) {
  pdl_wait();
  pdl_trigger();
  const int64_t i = blockIdx.x;
  const int t = targets[i];
  if (t < 0) {
    if (threadIdx.x == 0) nll[i] = 0.0f;
    return;
  }
  const float* l = logits + i * vocab;
  float mx = -INFINITY;
  for (int j = threadIdx.x; j < vocab; j += blockDim.x) mx = fmaxf(mx, l[j]);
  mx = block_max(mx);
  float s = 0;
  for (int j = threadIdx.x; j < vocab; j += blockDim.x) s += expf(l[j] - mx);
  s = block_sum(s);
  if (threadIdx.x == 0) nll[i] = logf(s) + mx - l[t];
}

__device__ __forceinline__ uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

template <typename T>
__global__ void random_fill_kernel(T* dst, int64_t n, uint64_t seed, float scale) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(gridDim.x) * blockDim.x) {
    const uint64_t h = mix64(seed * 0x9e3779b97f4a7c15ull + uint64_t(e));
    const float u = float(h >> 40) * (1.0f / 16777216.0f);  // [0, 1)
    dst[e] = from_f<T>((2.0f * u - 1.0f) * scale);
  }
}

template <typename T>
__global__ void fill_kernel(T* dst, int64_t n, float value) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(gridDim.x) * blockDim.x)
    dst[e] = from_f<T>(value);
}

int grid_for(int64_t n, int threads) {
  return int(std::min<int64_t>((n + threads - 1) / threads, 65535 * 8));
}

}  // namespace

void embedding_cuda(const CudaContext& ctx, DType t, const void* table, const int* ids, int n,
                    int dim, float* out) {
  if (n == 0) return;
  dispatch16(t, "GPU activations", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    launch_pdl(ctx, embedding_kernel<T>, dim3(n), dim3(256), 0, static_cast<const T*>(table), ids,
               dim, out);
  });
}

void rmsnorm_cuda(const CudaContext& ctx, DType t, const float* x, const void* w, const int* rows,
                  int n, int dim, float eps, void* out) {
  if (n == 0) return;
  dispatch16(t, "GPU activations", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    // Few rows (a decode step's head): wide blocks, so one row is not a serial chain of loads.
    const int threads = n < 64 ? 1024 : 256;
    launch_pdl(ctx, dim % 4 == 0 ? rmsnorm_kernel<T, 4> : rmsnorm_kernel<T, 1>, dim3(n),
               dim3(threads), 0, x, static_cast<const T*>(w), rows, dim, eps, static_cast<T*>(out));
  });
}

void rope_cuda(const CudaContext& ctx, float* qkv, int64_t row_stride, const int* pos, int n,
               int n_heads, int n_kv_heads, int head_dim, const float* inv_freq) {
  if (n == 0) return;
  check(head_dim % 2 == 0, "rope: head_dim must be even, got ", head_dim);
  const dim3 grid(n, (n_heads + n_kv_heads + kRopeHeads - 1) / kRopeHeads);
  launch_pdl(ctx, rope_kernel, grid, dim3(256), 0, qkv, row_stride, pos, n_heads, n_kv_heads,
             head_dim, inv_freq);
}

void swiglu_cuda(const CudaContext& ctx, DType t, const float* gate_up, int n, int inter, void* out,
                 bool interleaved) {
  const int64_t total = int64_t(n) * inter;
  if (total == 0) return;
  check(!interleaved || inter % kGateUpGroup == 0, "swiglu: interleaved gate/up needs inter % ",
        kGateUpGroup, " == 0, got ", inter);
  dispatch16(t, "GPU activations", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    if (inter % 4 == 0)
      launch_pdl(ctx, swiglu_kernel<T, 4>, dim3(grid_for(total / 4, 256)), dim3(256), 0, gate_up,
                 total, inter, interleaved, static_cast<T*>(out));
    else
      launch_pdl(ctx, swiglu_kernel<T, 1>, dim3(grid_for(total, 256)), dim3(256), 0, gate_up, total,
                 inter, false, static_cast<T*>(out));
  });
}

void nll_cuda(const CudaContext& ctx, const float* logits, const int* targets, int n, int vocab,
              float* nll) {
  if (n == 0) return;
  launch_pdl(ctx, nll_kernel, dim3(n), dim3(512), 0, logits, targets, vocab, nll);
}

void random_fill_cuda(const CudaContext& ctx, DType t, void* dst, int64_t n, uint64_t seed,
                      float scale) {
  if (n == 0) return;
  const int g = grid_for(n, 256);
  switch (t) {
    case DType::kF32:
      random_fill_kernel<<<g, 256, 0, ctx.stream()>>>(static_cast<float*>(dst), n, seed, scale);
      break;
    case DType::kF16:
      random_fill_kernel<<<g, 256, 0, ctx.stream()>>>(static_cast<__half*>(dst), n, seed, scale);
      break;
    case DType::kBF16:
      random_fill_kernel<<<g, 256, 0, ctx.stream()>>>(static_cast<__nv_bfloat16*>(dst), n, seed,
                                                      scale);
      break;
  }
  KVCOMP_LAUNCH_CHECK();
}

void fill_cuda(const CudaContext& ctx, DType t, void* dst, int64_t n, float value) {
  if (n == 0) return;
  const int g = grid_for(n, 256);
  switch (t) {
    case DType::kF32:
      fill_kernel<<<g, 256, 0, ctx.stream()>>>(static_cast<float*>(dst), n, value);
      break;
    case DType::kF16:
      fill_kernel<<<g, 256, 0, ctx.stream()>>>(static_cast<__half*>(dst), n, value);
      break;
    case DType::kBF16:
      fill_kernel<<<g, 256, 0, ctx.stream()>>>(static_cast<__nv_bfloat16*>(dst), n, value);
      break;
  }
  KVCOMP_LAUNCH_CHECK();
}

}  // namespace kvcomp
