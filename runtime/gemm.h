// cuBLAS GEMMs in the row-major terms the rest of the runtime uses.
#pragma once

#include <cstdint>

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

// The MLP's gate and up projections as one matrix whose rows alternate in groups of
// kGateUpGroup: gate rows 4q..4q+3, then up rows 4q..4q+3, for q = 0 .. inter/4 - 1 (inter % 4
// == 0). A decode GEMV block then holds both halves of its outputs and applies SwiGLU itself.
constexpr int kGateUpGroup = 4;
// out [2*inter, in] from gate and up [inter, in] (16-bit values).
void interleave_gate_up(const uint16_t* gate, const uint16_t* up, int inter, int in, uint16_t* out);

// m[n, inter] = t(silu(g) * u) where (g, u) are the gate and up outputs of x . w_gate_up^T, w in
// interleave_gate_up's order: the gemv and swiglu_cuda in one kernel.
void gemv_swiglu_cuda(const CudaContext& ctx, DType t, const void* x, const void* w_gate_up, int n,
                      int in, int inter, void* m);

}  // namespace kvcomp
