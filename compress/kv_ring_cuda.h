// The uncompressed recent window shared by the GPU caches that compress blocks (kvcomp and the
// fixed-bit baselines): per (sequence, KV head) a ring of `cap` tokens, fp16
// [n_seqs][n_kv][cap][head_dim], one for K and one for V; token p sits at slot p % cap.
#pragma once

#include "runtime/cuda_context.h"
#include "runtime/kv_cache_cuda.h"

namespace kvcomp {

// The step's k and v rows (fp32 projection output) -> ring_k / ring_v of each row's sequence.
void ring_append_cuda(const CudaContext& ctx, const QkvView& x, const StepLayout& step, int n_kv,
                      int head_dim, int cap_k, int cap_v, void* ring_k, void* ring_v);

// Tokens [done_k|v[s], len[s]) of each chunk's sequence s = chunk_seq[chunk] from the rings into
// scratch_k|v [chunk][n_kv][cap][head_dim] (at their positions), for n_chunks chunks.
void ring_window_copy_cuda(const CudaContext& ctx, const int* chunk_seq, int n_chunks, int n_kv,
                           int head_dim, const int* len, const int* done_k, const int* done_v,
                           const void* ring_k, const void* ring_v, int cap_k, int cap_v,
                           void* scratch_k, void* scratch_v, int cap);

// out[i] = i for i < n.
void iota_cuda(const CudaContext& ctx, int* out, int n);

}  // namespace kvcomp
