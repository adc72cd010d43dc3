// Split-K decode attention (flash decoding) over caches whose tokens are fp16 rows: one query
// token per sequence, the query heads of a GQA group served from one read of their KV head, long
// contexts split across thread blocks and merged by log-sum-exp. The dense fp16 cache's decode
// steps use it (runtime/attention_cublas.cu keeps the cuBLAS GEMM path as the paper's baseline),
// and the compressed caches' fused kernel (compress/attention_kvcomp.cu) is the same kernel with
// compressed blocks in front of the rows (runtime/attention_decode.cuh).
//
// Bytes per step and KV head: K and V, len * head_dim * 2 bytes each, read once; the partial
// states of the splits, (2 + head_dim) * 4 bytes per query head and split, written and read once.
#pragma once

#include <cstdint>

#include "models/safetensors.h"  // DType
#include "runtime/cuda_context.h"

namespace kvcomp {

// Everything the kernel reads of one layer. Pointers are device memory.
struct DecodeAttentionParams {
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;  // 64 or 128
  float scale = 0;   // 1/sqrt(head_dim)

  // Queries: row r of the fp32 projection output holds chunk r's query heads at column q_col.
  const float* qkv = nullptr;
  int64_t qkv_stride = 0;
  int q_col = 0;

  // One query token per chunk (a decode step). Per chunk: its sequence.
  int n_chunks = 0;
  const int* chunk_seq = nullptr;  // [n_chunks]
  const int* seq_len = nullptr;    // [n_seqs] tokens held, this step's token included

  // fp16 rows [n_seqs][n_kv_heads][cap][head_dim]: the token at position t sits in row t % cap
  // (the compressed caches' recent-window rings), or in row t when cap holds every token (the
  // dense cache, whose cap is its max_tokens).
  const uint16_t* ring_k = nullptr;
  const uint16_t* ring_v = nullptr;
  int cap_k = 0, cap_v = 0;

  // Output [n_chunks, n_heads * head_dim] of type act.
  void* out = nullptr;
};

// Whether the kernel takes the shape: head_dim 64 or 128, 1, 2, 4 or 8 query heads per KV head.
bool decode_attention_supported(int head_dim, int n_heads, int n_kv_heads);

// Scratch the launcher needs (partial softmax states of the splits) for any step of at most
// max_len keys.
size_t decode_attention_scratch_bytes(const DecodeAttentionParams& p, int max_len);

// Dense fp16 rows (cap >= every length). max_len: the longest sequence of the step (sizes the
// split grid; a decode step's key bucket, so that graphs capture fixed launches). split_tokens >
// 0 forces the split size (rounded up to the kernel's granule; tests).
void decode_attention_cuda(const CudaContext& ctx, const DecodeAttentionParams& p, int max_len,
                           DType act, void* scratch, size_t scratch_bytes, int split_tokens = 0);

}  // namespace kvcomp
