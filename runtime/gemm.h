// cuBLAS GEMMs in the row-major terms the rest of the runtime uses.
#pragma once

#include "models/safetensors.h"  // DType
#include "runtime/cuda_context.h"

namespace kvcomp {

// y[n, out] = x[n, in] . w[out, in]^T + beta * y. x and w of type t (16-bit); y fp32;
// fp32 accumulation.
// Decode-shaped calls (n <= kGemvMaxTokens) run the bandwidth-bound kernel of runtime/gemv.cu,
// the rest cuBLAS.
void linear_cuda(const CudaContext& ctx, DType t, const void* x, const void* w, int n, int in,
                 int out, float* y, float beta = 0.0f);

// The decode-shaped kernel itself (x, w 16-bit, x and w rows 16-byte aligned: in % 8 == 0).
constexpr int kGemvMaxTokens = 8;
bool gemv_applies(DType t, int n, int in);
void gemv_cuda(const CudaContext& ctx, DType t, const void* x, const void* w, int n, int in,
               int out, float* y, float beta = 0.0f);
// The same with the RMSNorm folded in: y = rsqrt(mean(x^2) + eps) * (x * norm_w) . w^T + beta * y,
// x the fp32 residual stream [n, in], norm_w [in] of type t; the normalized x stays in fp32.
// Every warp reads the fp32 rows and the norm weight through L1 (three times the plain kernel's
// L1 traffic per weight chunk): it pays at one token (no separate norm kernel), and becomes
// L1-bound with more (4 tokens: 2.4x slower), so it applies to a single row only.
bool gemv_rmsnorm_applies(DType t, int n, int in);
void gemv_rmsnorm_cuda(const CudaContext& ctx, DType t, const float* x, const void* norm_w,
                       float eps, const void* w, int n, int in, int out, float* y,
                       float beta = 0.0f);

}  // namespace kvcomp
