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

// Tokens [done_k|v[s], end) of each chunk's sequence s = chunk_seq[chunk] from the rings into
// scratch_k|v [chunk][n_kv][cap][head_dim] (at their positions), for n_chunks chunks; end is
// chunk_end[chunk] when chunk_end is given (e.g. a staged step's chunk starts: the tokens held
// before it), else len[s].
void ring_window_copy_cuda(const CudaContext& ctx, const int* chunk_seq, int n_chunks, int n_kv,
                           int head_dim, const int* len, const int* chunk_end, const int* done_k,
                           const int* done_v, const void* ring_k, const void* ring_v, int cap_k,
                           int cap_v, void* scratch_k, void* scratch_v, int cap);

// A staged step's k and v rows (fp32 projection output) -> scratch_k|v [chunk][n_kv][cap][head_dim]
// at their positions; row_chunk[row]: the row's chunk.
void scratch_append_cuda(const CudaContext& ctx, const QkvView& x, const StepLayout& step,
                         const int* row_chunk, int n_kv, int head_dim, void* scratch_k,
                         void* scratch_v, int cap);

// The reverse of ring_window_copy_cuda: tokens [from_k|v[s], len[s]) of each chunk's sequence
// from scratch_k|v [chunk][n_kv][cap][head_dim] into the rings (slot p % cap_k|v).
void ring_from_scratch_cuda(const CudaContext& ctx, const int* chunk_seq, int n_chunks, int n_kv,
                            int head_dim, const int* len, const int* from_k, const int* from_v,
                            const void* scratch_k, const void* scratch_v, int cap, void* ring_k,
                            void* ring_v, int cap_k, int cap_v);

// out[i] = i for i < n.
void iota_cuda(const CudaContext& ctx, int* out, int n);

}  // namespace kvcomp
