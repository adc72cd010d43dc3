// Fused decode attention over a KVComp-compressed cache: compressed K and V blocks are read
// once, Huffman-decoded and dequantized in registers, and used at once for q.k and p.v of every
// query head of the GQA group; the uncompressed recent window is read in the same kernel; long
// contexts are split across thread blocks and merged by log-sum-exp. No decoded K or V is ever
// written to device memory.
#pragma once

#include <cstdint>

#include "models/safetensors.h"  // DType
#include "runtime/cuda_context.h"

namespace kvcomp {

// Everything the kernel reads for one layer. Pointers are device memory.
struct KvcompAttentionParams {
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
  // Per sequence: tokens held (this step's token included), tokens of compressed K and V blocks.
  const int* seq_len = nullptr;     // [n_seqs]
  const int* seq_k_done = nullptr;  // [n_seqs], a multiple of block_k
  const int* seq_v_done = nullptr;  // [n_seqs], a multiple of block_v

  // Uncompressed recent tokens: ring buffers [n_seqs][n_kv_heads][cap][head_dim] fp16; the token
  // at position p sits in row p % cap.
  const uint16_t* ring_k = nullptr;
  const uint16_t* ring_v = nullptr;
  int cap_k = 0, cap_v = 0;

  // Compressed blocks (compress/format.h): [n_seqs][n_kv_heads][max_blocks] block addresses.
  const uint8_t* const* k_blocks = nullptr;
  const uint8_t* const* v_blocks = nullptr;
  int max_k_blocks = 0, max_v_blocks = 0;
  int block_k = 0, block_v = 0;

  // Decode tables (Codebook::gpu_table(): 2^bits entries) for K and V; table_head_stride
  // entries between KV heads (0: one codebook for every head).
  const uint32_t* k_table = nullptr;
  const uint32_t* v_table = nullptr;
  int k_bits = 0, v_bits = 0;
  int64_t k_table_head_stride = 0, v_table_head_stride = 0;

  // Output [n_chunks, n_heads * head_dim] of type act.
  void* out = nullptr;
};

// Scratch the launcher needs for a given shape (partial softmax states of the splits).
size_t kvcomp_attention_scratch_bytes(const KvcompAttentionParams& p, int max_len);

// Table layout the kernel uses: every entry replicated per lane when the table has at most 2^8
// entries (no shared-memory bank conflicts), else one shared copy.
struct KvcompAttentionTuning {
  int split_tokens = 0;  // 0: chosen from the shape
  int replicas = -1;     // -1: automatic (32 when bits <= 8), else 1 or 32
};

// max_len: the longest sequence of the step (sizes the split grid).
void kvcomp_attention_cuda(const CudaContext& ctx, const KvcompAttentionParams& p, int max_len,
                           DType act, void* scratch, size_t scratch_bytes,
                           const KvcompAttentionTuning& tuning = {});

}  // namespace kvcomp
