// The fixed-bit KV cache of the CPU backend (--kv kivi2, kivi4, int8, fp8): the ground truth
// of the GPU cache (compress/kv_cache_fixedbit_cuda.h) and the baselines' accuracy and bytes on
// a machine without a GPU. Layout, fp16 rounding and commit() as BlockedKvCacheRef
// (compress/kv_cache_blocked_ref.h), with a fixed-bit block format (compress/fixedbit.h) in
// place of the Huffman-coded one:
// - attend(): attention_ref over the dequantized blocks (fp16 values) and the raw window.
// - stats(): payload = code bytes, params = fp16 scales and zeros; the window at 2 bytes per
//   value, reported separately, as for kvcomp; no headers, index or codebooks.
#pragma once

#include <cstdint>
#include <vector>

#include "compress/fixedbit.h"
#include "compress/kv_cache_blocked_ref.h"
#include "runtime/kv_options.h"

namespace kvcomp {

class FixedBitCacheRef : public BlockedKvCacheRef {
 public:
  // Throws Error when an option is out of range or the mode is not a fixed-bit one.
  FixedBitCacheRef(const KvShape& shape, const KvOptions& opts);

  KvStats layer_stats(int layer) const override;
  int64_t reserved_bytes() const override;  // the values and the blocks

  // Inspection, for tests.
  const FixedBitFormat& format(KvPart p) const { return p == KvPart::kK ? fmt_.k : fmt_.v; }
  int64_t block_bytes(KvPart p) const {
    return format(p).block_bytes(block_tokens(p), shape_.head_dim);
  }
  // Block b of one (layer, seq, KV head): block_bytes(p) bytes.
  const uint8_t* block(KvPart p, int layer, int seq, int head, int b) const;

 private:
  void compress_blocks(KvPart p, int layer, const std::vector<int>& due) override;

  FixedBitFormats fmt_;
  std::vector<std::vector<uint8_t>> streams_[2];  // [K|V][layer, seq, head] -> blocks back to back
};

}  // namespace kvcomp
