// Fused decode attention over a KVComp-compressed cache: compressed K and V blocks are read
// once, Huffman-decoded and dequantized in registers, and used at once for q.k and p.v of every
// query head of the GQA group; the uncompressed recent window is read in the same kernel; long
// contexts are split across thread blocks and merged by log-sum-exp. No decoded K or V is ever
// written to device memory. It is runtime/attention_decode.h's kernel with compressed blocks in
// front of the fp16 rows (compress/attention_kvcomp.cu says how they are decoded).
#pragma once

#include <cstdint>

#include "models/safetensors.h"  // DType
#include "runtime/attention_decode.h"
#include "runtime/cuda_context.h"

namespace kvcomp {

// Everything the kernel reads for one layer: the rows of DecodeAttentionParams are the recent
// window (rings of cap_k / cap_v tokens), the blocks hold the tokens before it.
struct KvcompAttentionParams : DecodeAttentionParams {
  // Per sequence: tokens of compressed K and V blocks.
  const int* seq_k_done = nullptr;  // [n_seqs], a multiple of block_k
  const int* seq_v_done = nullptr;  // [n_seqs], a multiple of block_v

  // Compressed blocks (compress/format.h): [n_seqs][n_kv_heads][max_blocks] block addresses.
  const uint8_t* const* k_blocks = nullptr;
  const uint8_t* const* v_blocks = nullptr;
  int max_k_blocks = 0, max_v_blocks = 0;
  int block_k = 0, block_v = 0;

  // Decode tables (Codebook::gpu_table(): 2^bits entries) for K and V, one codebook per layer.
  const uint32_t* k_table = nullptr;
  const uint32_t* v_table = nullptr;
  int k_bits = 0, v_bits = 0;
  // Codebook::fixed_bits() of the two codebooks: > 0 when every code has that length, so full
  // blocks are unpacked at known bit positions instead of looked up code by code.
  int k_fixed_bits = 0, v_fixed_bits = 0;
};

// Scratch the launcher needs for any step of at most max_len keys (partial softmax states of the
// splits).
size_t kvcomp_attention_scratch_bytes(const KvcompAttentionParams& p, int max_len);

// How the kernel lays out its decode tables; for tests and measurements.
struct KvcompAttentionTuning {
  int split_tokens = 0;  // 0: chosen from the shape; else rounded up to the kernel's granule
  int replicas = -1;     // -1: automatic (32 when bits <= 8), else 1 or 32
  bool fixed_paths = true;  // false: fixed-length codes are decoded by table lookup like any code
  bool mma_tiles = false;   // fixed-length codes at head_dim 128: tiles of 128 tokens whose q.K
                            // and p.V run on tensor cores (KvcompMma; tested, speed not yet
                            // measured: off by default until docs/perf-log.md's eighth round has
                            // its numbers)
};

// max_len: the longest sequence of the step (sizes the split grid).
void kvcomp_attention_cuda(const CudaContext& ctx, const KvcompAttentionParams& p, int max_len,
                           DType act, void* scratch, size_t scratch_bytes,
                           const KvcompAttentionTuning& tuning = {});

}  // namespace kvcomp
