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

}  // namespace kvcomp
