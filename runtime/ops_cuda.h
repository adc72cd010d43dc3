// GPU Llama ops (launchers). Each has a CPU twin in runtime/ops_ref.h that the tests compare
// it with. Activations that feed GEMMs are in the weights' 16-bit type `t` (kF16 or kBF16);
// the residual stream, GEMM outputs and everything numerically delicate stay in fp32.
// Launchers never allocate; they run on ctx's stream.
#pragma once

#include <cstdint>

#include "models/safetensors.h"  // DType
#include "runtime/cuda_context.h"
#include "runtime/gemm.h"  // kGateUpGroup

namespace kvcomp {

// out[i, :] = float(table[ids[i], :]). table: [vocab, dim] of type t; out: [n, dim] fp32.
void embedding_cuda(const CudaContext& ctx, DType t, const void* table, const int* ids, int n,
                    int dim, float* out);

// out[i, :] = t(x[r, :] * rsqrt(mean(x[r, :]^2) + eps) * w) with r = rows ? rows[i] : i.
// x: fp32 [*, dim]; w: [dim] of type t; out: [n, dim] of type t.
void rmsnorm_cuda(const CudaContext& ctx, DType t, const float* x, const void* w, const int* rows,
                  int n, int dim, float eps, void* out);

// Rotary embedding in place (rotate_half convention) on the q heads (columns
// [0, n_heads*head_dim)) and the k heads (the next n_kv_heads*head_dim columns) of each row of
// qkv: fp32 [n, row_stride]. pos: [n]; inv_freq: [head_dim/2].
void rope_cuda(const CudaContext& ctx, float* qkv, int64_t row_stride, const int* pos, int n,
               int n_heads, int n_kv_heads, int head_dim, const float* inv_freq);

// out[i, j] = t(silu(gate_up[i, j]) * gate_up[i, inter + j]). gate_up: fp32 [n, 2*inter].
// interleaved: gate_up's columns are in the order of interleave_gate_up (runtime/gemm.h) instead.
void swiglu_cuda(const CudaContext& ctx, DType t, const float* gate_up, int n, int inter,
                 void* out, bool interleaved = false);

// nll[i] = logsumexp(logits[i, :]) - logits[i, targets[i]]; 0 where targets[i] < 0.
void nll_cuda(const CudaContext& ctx, const float* logits, const int* targets, int n, int vocab,
              float* nll);

// Fills n values of type t (kF32, kF16, kBF16) with uniform values in [-scale, scale] from a
// counter-based hash of (seed, index): the same numbers on every run and GPU.
void random_fill_cuda(const CudaContext& ctx, DType t, void* dst, int64_t n, uint64_t seed,
                      float scale);
// Fills n values of type t with `value`.
void fill_cuda(const CudaContext& ctx, DType t, void* dst, int64_t n, float value);

}  // namespace kvcomp
