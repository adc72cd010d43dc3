// The fixed-bit KV cache of the CPU backend (--kv kivi2, kivi4, int8, fp8): the ground truth
// of the GPU cache (compress/kv_cache_fixedbit_cuda.h) and the baselines' accuracy and bytes on
// a machine without a GPU. The same semantics as KvCompCacheRef, with a fixed-bit block format
// (compress/fixedbit.h) in place of the Huffman-coded one:
// - Layout. Per layer, sequence and KV head, K tokens [0, k_done) live in quantized blocks of
//   block_k tokens, tokens [k_done, len) are raw fp16 (the recent window); V likewise with
//   block_v and window_v. Values enter rounded to fp16.
// - commit(), after every forward step: while len - k_done >= window_k + block_k, K tokens
//   [k_done, k_done + block_k) become one block and k_done advances; V the same. Nothing is
//   re-quantized.
// - attend(): attention_ref over the dequantized blocks (fp16 values) and the raw window.
// - stats(): payload = code bytes, params = fp16 scales and zeros; the window at 2 bytes per
//   value, reported separately, as for kvcomp; no headers, index or codebooks.
#pragma once

#include <cstdint>
#include <vector>

#include "compress/fixedbit.h"
#include "compress/kv_cache_kvcomp_ref.h"  // KvStats, KvPart
#include "runtime/kv_cache_ref.h"
#include "runtime/kv_options.h"

namespace kvcomp {

class FixedBitCacheRef : public DenseKvCacheRef {
 public:
  // Throws Error when an option is out of range or the mode is not a fixed-bit one.
  FixedBitCacheRef(const KvShape& shape, const KvOptions& opts);

  void commit() override;
  int64_t bytes() const override;

  KvStats stats() const;
  KvStats layer_stats(int layer) const;

  // Inspection, for tests.
  const KvShape& shape() const { return shape_; }
  const FixedBitFormat& format(KvPart p) const { return p == KvPart::kK ? fmt_.k : fmt_.v; }
  int length(int layer, int seq) const { return len_[slot(layer, seq)]; }
  int done(KvPart p, int layer, int seq) const { return done_[int(p)][slot(layer, seq)]; }
  int block_tokens(KvPart p) const { return p == KvPart::kK ? block_k_ : block_v_; }
  int window_tokens(KvPart p) const { return p == KvPart::kK ? window_k_ : window_v_; }
  int n_blocks(KvPart p, int layer, int seq) const { return done(p, layer, seq) / block_tokens(p); }
  int64_t block_bytes(KvPart p) const {
    return format(p).block_bytes(block_tokens(p), shape_.head_dim);
  }
  // Block b of one (layer, seq, KV head): block_bytes(p) bytes.
  const uint8_t* block(KvPart p, int layer, int seq, int head, int b) const;
  // What attention reads, [len, n_kv_heads, head_dim]: dequantized values for tokens in blocks,
  // the fp16-rounded values for the window.
  const std::vector<float>& values(KvPart p, int layer, int seq) const {
    return values_[int(p)][slot(layer, seq)];
  }

 private:
  size_t stream_index(int layer, int seq, int head) const {
    return slot(layer, seq) * shape_.n_kv_heads + head;
  }
  void quantize_due(KvPart p, int layer);

  FixedBitFormats fmt_;
  int block_k_, block_v_, window_k_, window_v_;
  std::vector<int> done_[2];                      // [K|V][n_layers * n_seqs]
  std::vector<std::vector<uint8_t>> streams_[2];  // [K|V][layer, seq, head] -> blocks back to back
};

}  // namespace kvcomp
