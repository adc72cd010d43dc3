// Fused causal prefill attention over an fp16 [n_kv, tokens, head_dim] cache (FlashAttention-2
// style: one kernel, no scores in device memory). Used by dense_attention_cuda for non-decode
// steps; the cuBLAS prefill path remains the fallback for shapes this kernel does not take.
#pragma once

#include "models/safetensors.h"  // DType
#include "runtime/cuda_context.h"
#include "runtime/kv_cache_cuda.h"

namespace kvcomp {

// True when prefill_attention_cuda takes this shape and these buffers: head_dim 64 or 128, K and
// V 16-byte aligned with seq_stride a multiple of 8 elements.
bool prefill_attention_supported(const KvShape& shape, const DenseAttentionArgs& a);

// Causal attention of every chunk's q rows over its sequence's keys 0 .. start + count - 1
// (which the cache already holds: append runs before attend). q: fp32 columns x.q_col +
// h * head_dim of rows c.row .. c.row + c.count - 1; out: [T, n_heads * head_dim] of type `act`
// (F16 or BF16), only the chunks' rows written. Scale 1/sqrt(head_dim). Enqueued on ctx's
// stream; no allocation, no host synchronization. Throws Error when the shape is not supported
// (check prefill_attention_supported first) or a chunk reaches past a.tokens_cap.
void prefill_attention_cuda(const CudaContext& ctx, const KvShape& shape,
                            const DenseAttentionArgs& a, const QkvView& x, const StepLayout& step,
                            DType act, void* out);

}  // namespace kvcomp
