// A compressed KV cache image built on the host from given K/V (the CPU reference encoder), then
// uploaded: what the fused attention kernel reads, without the runtime around it. Shared by the
// attention micro-benchmark and the fused-kernel tests.
#pragma once

#include <cstdint>
#include <vector>

#include "compress/accounting.h"
#include "compress/attention_kvcomp.h"
#include "compress/codec_ref.h"
#include "runtime/cuda_context.h"
#include "runtime/device_buffer.h"
#include "runtime/kv_cache_cuda.h"

namespace kvcomp::testbed {

// K (after RoPE) and V of a batch, fp16-rounded. Sequence s uses the data of unique sequence
// s % n_unique (its bytes are copied, never shared, so caches cannot serve one sequence's reads
// to another).
struct HostKv {
  int n_seqs = 0, n_unique = 0, n_kv_heads = 0, head_dim = 0;
  std::vector<int> len;                  // [n_seqs]
  std::vector<std::vector<float>> k, v;  // [unique * n_kv_heads + h] -> [len][head_dim]
  const std::vector<float>& kh(int s, int h) const { return k[(s % n_unique) * n_kv_heads + h]; }
  const std::vector<float>& vh(int s, int h) const { return v[(s % n_unique) * n_kv_heads + h]; }
};

struct ImageOptions {
  CodecOptions codec;
  int window_k = 128, window_v = 256;
  int force_raw_every = 0;  // > 0: every n-th K and V block is encoded raw (tests)
};

// The compressed cache on the GPU, with the host's decoded copy for reference.
struct KvcompImage {
  DeviceBuffer arena, k_index, v_index, ring_k, ring_v, k_table, v_table;
  DeviceBuffer seq_len, k_done, v_done, chunk_seq;
  KvcompAttentionParams params;  // all but the query and output fields
  std::vector<int> h_k_done, h_v_done;
  // Decoded values as attention sees them: [unique * n_kv + h] -> [len][head_dim].
  std::vector<std::vector<float>> k_dec, v_dec;
  CodecBytes k_bytes, v_bytes;   // one sequence of each unique one (no copies)
  int64_t compressed_bytes = 0;  // the whole batch, blocks only (window excluded)
  int64_t window_bytes = 0;      // the whole batch
  int64_t symbols = 0;           // Huffman-coded values of the batch
  int raw_blocks = 0;
};

KvcompImage build_kvcomp_image(const HostKv& kv, int n_heads, const ImageOptions& o);

// The same K/V uncompressed: fp16 [n_seqs][n_kv][cap][head_dim] for the cuBLAS baseline.
struct DenseImage {
  DeviceBuffer k, v, seq_len, chunk_start, chunk_seq;
  DenseAttentionArgs args;
  int cap = 0;
};
DenseImage build_dense_image(const HostKv& kv);

// Attention of one query per sequence (q: [n_seqs][n_heads][head_dim] fp32) over the given
// per-(unique seq, head) values, in double: out [n_seqs][n_heads][head_dim].
std::vector<float> reference_attention(const HostKv& kv, int n_heads,
                                       const std::vector<std::vector<float>>& k,
                                       const std::vector<std::vector<float>>& v,
                                       const std::vector<float>& q);

}  // namespace kvcomp::testbed
