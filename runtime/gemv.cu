// Decode-shaped linear layers (a few tokens): y[n, out] = x[n, in] . w[out, in]^T + beta * y with
// n <= 8. Bound by reading w once: one warp per output row, 16-byte loads, 8 (one token) or 4
// in flight per lane, x read through L1 (it is n * in * 2 bytes, shared by every warp). cuBLAS
// picks GEMM kernels for these shapes that leave bandwidth unused; this is the weight-read floor's
// kernel.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "runtime/cuda_check.h"
#include "runtime/cuda_types.cuh"  // from_f
#include "runtime/gemm.h"
#include "runtime/pdl.cuh"
#include "runtime/swiglu.cuh"

namespace kvcomp {
namespace {

constexpr int kWarps = 8;

__device__ __forceinline__ void to_float8(const uint4& u, const __half*, float* f) {
  const __half2* h = reinterpret_cast<const __half2*>(&u);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 v = __half22float2(h[i]);
    f[2 * i] = v.x;
    f[2 * i + 1] = v.y;
  }
}
__device__ __forceinline__ void to_float8(const uint4& u, const __nv_bfloat16*, float* f) {
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&u);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 v = __bfloat1622float2(h[i]);
    f[2 * i] = v.x;
    f[2 * i + 1] = v.y;
  }
}

// Weights are read once: loaded without allocating in L1, which keeps x there.
__device__ __forceinline__ uint4 load_w(const uint4* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

// What a block does once its rows are summed.
enum Epilogue {
  kStore,   // y = acc + beta * y
  kSwiglu,  // rows in interleave_gate_up's order, kWarps = 2 * kGateUpGroup per block: the
            // block's 4 gate and 4 up rows give m[t][4 * block + i] = silu(g_i) * u_i
};
static_assert(kWarps == 2 * kGateUpGroup, "a SwiGLU block holds one group of gate and up rows");

// Launched with launch_pdl: the first group of weights is loaded before pdl_wait(), while the
// kernel before it (which produces x) is still finishing. kSwiglu writes m [n, out / 2] instead
// of y.
template <typename T, int NT, int EPI, int LOADS>
__global__ void __launch_bounds__(kWarps * 32)
    gemv_kernel(const T* __restrict__ x, const T* __restrict__ w, int in, int out,
                float* __restrict__ y, float beta, T* __restrict__ m) {
  const int lane = threadIdx.x & 31;
  const int row = blockIdx.x * kWarps + (threadIdx.x >> 5);
  const bool active = row < out;
  const uint4* wr = reinterpret_cast<const uint4*>(w + int64_t(active ? row : 0) * in);
  const int chunks = in / 8;  // 16-byte chunks of the row
  float acc[NT];
#pragma unroll
  for (int t = 0; t < NT; ++t) acc[t] = 0.0f;
  int c = lane;
  uint4 wv[LOADS];
  bool full = active && c + 32 * (LOADS - 1) < chunks;  // the group at c is whole for this lane
  if (full) {
#pragma unroll
    for (int u = 0; u < LOADS; ++u) wv[u] = load_w(wr + c + 32 * u);
  }
  pdl_wait();
  pdl_trigger();
  while (full) {
#pragma unroll
    for (int u = 0; u < LOADS; ++u) {
      float wf[8];
      to_float8(wv[u], static_cast<const T*>(nullptr), wf);
#pragma unroll
      for (int t = 0; t < NT; ++t) {
        float xf[8];
        to_float8(__ldg(reinterpret_cast<const uint4*>(x + int64_t(t) * in) + c + 32 * u),
                  static_cast<const T*>(nullptr), xf);
#pragma unroll
        for (int k = 0; k < 8; ++k) acc[t] = fmaf(wf[k], xf[k], acc[t]);
      }
    }
    c += 32 * LOADS;
    full = c + 32 * (LOADS - 1) < chunks;
    if (full) {
#pragma unroll
      for (int u = 0; u < LOADS; ++u) wv[u] = load_w(wr + c + 32 * u);
    }
  }
  // The partial group at the row's end.
  for (; active && c < chunks; c += 32) {
    float wf[8];
    to_float8(load_w(wr + c), static_cast<const T*>(nullptr), wf);
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      float xf[8];
      to_float8(__ldg(reinterpret_cast<const uint4*>(x + int64_t(t) * in) + c),
                static_cast<const T*>(nullptr), xf);
#pragma unroll
      for (int k = 0; k < 8; ++k) acc[t] = fmaf(wf[k], xf[k], acc[t]);
    }
  }
#pragma unroll
  for (int t = 0; t < NT; ++t)
    for (int o = 16; o > 0; o >>= 1) acc[t] += __shfl_xor_sync(0xffffffffu, acc[t], o);
  if constexpr (EPI == kSwiglu) {
    __shared__ float sums[kWarps][NT];
    const int warp = threadIdx.x >> 5;
    if (lane == 0)
#pragma unroll
      for (int t = 0; t < NT; ++t) sums[warp][t] = acc[t];
    __syncthreads();
    const int inter = out / 2;
    if (threadIdx.x < kGateUpGroup * NT) {
      const int i = threadIdx.x % kGateUpGroup, t = threadIdx.x / kGateUpGroup;
      const int j = blockIdx.x * kGateUpGroup + i;
      if (j < inter)
        m[int64_t(t) * inter + j] = from_f<T>(silu_mul(sums[i][t], sums[kGateUpGroup + i][t]));
    }
    return;
  }
  if (active && lane == 0)
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      float* dst = y + int64_t(t) * out + row;
      *dst = beta == 0.0f ? acc[t] : acc[t] + beta * *dst;
    }
}

template <typename T, int NT>
void launch(const CudaContext& ctx, int epi, const void* x, const void* w, int in, int out,
            float* y, float beta, void* m) {
  // Loads in flight per lane: 8 for one token (a 7B decode step 5% faster than with 4), 4 for
  // more (with 8, batch 4 was 6% slower).
  constexpr int kLoads = NT == 1 ? 8 : 4;
  auto kernel =
      epi == kSwiglu ? gemv_kernel<T, NT, kSwiglu, kLoads> : gemv_kernel<T, NT, kStore, kLoads>;
  launch_pdl(ctx, kernel, dim3((out + kWarps - 1) / kWarps), dim3(kWarps * 32), 0,
             static_cast<const T*>(x), static_cast<const T*>(w), in, out, y, beta,
             static_cast<T*>(m));
}

template <typename T>
void dispatch(const CudaContext& ctx, int epi, int n, const void* x, const void* w, int in, int out,
              float* y, float beta, void* m) {
  switch (n) {
    case 1:
      return launch<T, 1>(ctx, epi, x, w, in, out, y, beta, m);
    case 2:
      return launch<T, 2>(ctx, epi, x, w, in, out, y, beta, m);
    case 3:
      return launch<T, 3>(ctx, epi, x, w, in, out, y, beta, m);
    case 4:
      return launch<T, 4>(ctx, epi, x, w, in, out, y, beta, m);
    case 5:
      return launch<T, 5>(ctx, epi, x, w, in, out, y, beta, m);
    case 6:
      return launch<T, 6>(ctx, epi, x, w, in, out, y, beta, m);
    case 7:
      return launch<T, 7>(ctx, epi, x, w, in, out, y, beta, m);
    case 8:
      return launch<T, 8>(ctx, epi, x, w, in, out, y, beta, m);
    default:
      fail("gemv: at most ", kGemvMaxTokens, " tokens, got ", n);
  }
}

}  // namespace

bool gemv_applies(DType t, int n, int in) {
  return n >= 1 && n <= kGemvMaxTokens && in % 8 == 0 && (t == DType::kF16 || t == DType::kBF16);
}

static void run(const CudaContext& ctx, DType t, int epi, int n, const void* x, const void* w,
                int in, int out, float* y, float beta, void* m) {
  check(gemv_applies(t, n, in), "gemv: unsupported shape (", n, " tokens, in ", in, ")");
  if (t == DType::kBF16)
    dispatch<__nv_bfloat16>(ctx, epi, n, x, w, in, out, y, beta, m);
  else
    dispatch<__half>(ctx, epi, n, x, w, in, out, y, beta, m);
}

void gemv_cuda(const CudaContext& ctx, DType t, const void* x, const void* w, int n, int in,
               int out, float* y, float beta) {
  run(ctx, t, kStore, n, x, w, in, out, y, beta, nullptr);
}

void gemv_swiglu_cuda(const CudaContext& ctx, DType t, const void* x, const void* w_gate_up, int n,
                      int in, int inter, void* m) {
  check(inter % kGateUpGroup == 0, "gemv_swiglu: inter ", inter, " is not a multiple of ",
        kGateUpGroup);
  run(ctx, t, kSwiglu, n, x, w_gate_up, in, 2 * inter, nullptr, 0.0f, m);
}

}  // namespace kvcomp
