// Decode-shaped linear layers (a few tokens): y[n, out] = x[n, in] . w[out, in]^T + beta * y with
// n <= 8, optionally with the RMSNorm of x folded in (gemv_rmsnorm_cuda: no separate norm kernel
// and no normalized copy of x in memory). Bound by reading w once: one warp per output row, 16-byte
// loads, kLoads in flight per lane, x read through L1 (it is n * in * 2 bytes, shared by every
// warp). cuBLAS picks GEMM kernels for these shapes that leave bandwidth unused; this is the
// weight-read floor's kernel.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "runtime/cuda_check.h"
#include "runtime/gemm.h"

namespace kvcomp {
namespace {

constexpr int kWarps = 8;
constexpr int kLoads = 4;  // 16-byte weight loads in flight per lane

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

// The input of one 8-value chunk of token t, as floats. Plain: x is [n, in] of type T. With the
// RMSNorm folded in (kNorm): x is the fp32 residual stream, scaled here by the norm weight g;
// ss[t] accumulates sum(x^2), and the caller multiplies the dot product by rsqrt(ss/in + eps):
// y = rsqrt(mean(x^2) + eps) * (w . (x * g)), RMSNorm then the projection, with the normalized
// input kept in fp32 (not rounded to T as a separate RMSNorm kernel's output would be).
template <typename T, bool kNorm>
__device__ __forceinline__ void load_x8(const void* __restrict__ x, int64_t in, int t, int c,
                                        const float* gf, float* xf, float& ss) {
  if constexpr (kNorm) {
    const float4* xr =
        reinterpret_cast<const float4*>(static_cast<const float*>(x) + t * in) + 2 * c;
    const float4 a = __ldg(xr), b = __ldg(xr + 1);
    const float v[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      ss = fmaf(v[k], v[k], ss);
      xf[k] = v[k] * gf[k];
    }
  } else {
    to_float8(__ldg(reinterpret_cast<const uint4*>(static_cast<const T*>(x) + t * in) + c),
              static_cast<const T*>(nullptr), xf);
  }
}

template <typename T, int NT, bool kNorm>
__global__ void __launch_bounds__(kWarps * 32)
    gemv_kernel(const void* __restrict__ x, const T* __restrict__ g, float eps,
                const T* __restrict__ w, int in, int out, float* __restrict__ y, float beta) {
  const int lane = threadIdx.x & 31;
  const int row = blockIdx.x * kWarps + (threadIdx.x >> 5);
  if (row >= out) return;
  const uint4* wr = reinterpret_cast<const uint4*>(w + int64_t(row) * in);
  const int chunks = in / 8;  // 16-byte chunks of the row
  float acc[NT], ss[NT];
#pragma unroll
  for (int t = 0; t < NT; ++t) acc[t] = ss[t] = 0.0f;
  // One chunk of w against every token's chunk c of x.
  auto step = [&](const uint4& wv, int c) {
    float wf[8], gf[8];
    to_float8(wv, static_cast<const T*>(nullptr), wf);
    if constexpr (kNorm) to_float8(__ldg(reinterpret_cast<const uint4*>(g) + c), g, gf);
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      float xf[8];
      load_x8<T, kNorm>(x, in, t, c, gf, xf, ss[t]);
#pragma unroll
      for (int k = 0; k < 8; ++k) acc[t] = fmaf(wf[k], xf[k], acc[t]);
    }
  };
  int c = lane;
  for (; c + 32 * (kLoads - 1) < chunks; c += 32 * kLoads) {
    uint4 wv[kLoads];
#pragma unroll
    for (int u = 0; u < kLoads; ++u) wv[u] = __ldg(wr + c + 32 * u);
#pragma unroll
    for (int u = 0; u < kLoads; ++u) step(wv[u], c + 32 * u);
  }
  for (; c < chunks; c += 32) step(__ldg(wr + c), c);
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    float v = acc[t], s = ss[t];
    for (int o = 16; o > 0; o >>= 1) {
      v += __shfl_xor_sync(0xffffffffu, v, o);
      if constexpr (kNorm) s += __shfl_xor_sync(0xffffffffu, s, o);
    }
    if constexpr (kNorm) v *= rsqrtf(s / float(in) + eps);
    if (lane == 0) {
      float* dst = y + int64_t(t) * out + row;
      *dst = beta == 0.0f ? v : v + beta * *dst;
    }
  }
}

template <typename T, int NT>
void launch(const CudaContext& ctx, const void* x, const void* g, float eps, const void* w, int in,
            int out, float* y, float beta) {
  const dim3 grid((out + kWarps - 1) / kWarps), block(kWarps * 32);
  if (g)
    gemv_kernel<T, NT, true><<<grid, block, 0, ctx.stream()>>>(
        x, static_cast<const T*>(g), eps, static_cast<const T*>(w), in, out, y, beta);
  else
    gemv_kernel<T, NT, false><<<grid, block, 0, ctx.stream()>>>(
        x, nullptr, 0.0f, static_cast<const T*>(w), in, out, y, beta);
  KVCOMP_LAUNCH_CHECK();
}

template <typename T>
void dispatch(const CudaContext& ctx, int n, const void* x, const void* g, float eps, const void* w,
              int in, int out, float* y, float beta) {
  switch (n) {
    case 1:
      return launch<T, 1>(ctx, x, g, eps, w, in, out, y, beta);
    case 2:
      return launch<T, 2>(ctx, x, g, eps, w, in, out, y, beta);
    case 3:
      return launch<T, 3>(ctx, x, g, eps, w, in, out, y, beta);
    case 4:
      return launch<T, 4>(ctx, x, g, eps, w, in, out, y, beta);
    case 5:
      return launch<T, 5>(ctx, x, g, eps, w, in, out, y, beta);
    case 6:
      return launch<T, 6>(ctx, x, g, eps, w, in, out, y, beta);
    case 7:
      return launch<T, 7>(ctx, x, g, eps, w, in, out, y, beta);
    case 8:
      return launch<T, 8>(ctx, x, g, eps, w, in, out, y, beta);
    default:
      fail("gemv: at most ", kGemvMaxTokens, " tokens, got ", n);
  }
}

void gemv_any(const CudaContext& ctx, DType t, const void* x, const void* g, float eps,
              const void* w, int n, int in, int out, float* y, float beta) {
  check(gemv_applies(t, n, in), "gemv: unsupported shape (", n, " tokens, in ", in, ")");
  if (t == DType::kBF16)
    dispatch<__nv_bfloat16>(ctx, n, x, g, eps, w, in, out, y, beta);
  else
    dispatch<__half>(ctx, n, x, g, eps, w, in, out, y, beta);
}

}  // namespace

bool gemv_applies(DType t, int n, int in) {
  return n >= 1 && n <= kGemvMaxTokens && in % 8 == 0 && (t == DType::kF16 || t == DType::kBF16);
}

void gemv_cuda(const CudaContext& ctx, DType t, const void* x, const void* w, int n, int in,
               int out, float* y, float beta) {
  gemv_any(ctx, t, x, nullptr, 0.0f, w, n, in, out, y, beta);
}

bool gemv_rmsnorm_applies(DType t, int n, int in) {
  return n == 1 && gemv_applies(t, n, in);
}

void gemv_rmsnorm_cuda(const CudaContext& ctx, DType t, const float* x, const void* norm_w,
                       float eps, const void* w, int n, int in, int out, float* y, float beta) {
  check(gemv_rmsnorm_applies(t, n, in), "gemv_rmsnorm: unsupported shape (", n, " tokens, in ", in,
        ")");
  gemv_any(ctx, t, x, norm_w, eps, w, n, in, out, y, beta);
}

}  // namespace kvcomp
