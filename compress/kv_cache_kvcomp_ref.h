// The KVComp-compressed KV cache of the CPU backend: the ground truth the GPU cache is tested
// against, and the cache that lets a machine without a GPU measure accuracy and bytes.
//
// Semantics (the GPU cache does exactly this; tests compare the two block for block): layout,
// fp16 rounding and commit() as BlockedKvCacheRef (compress/kv_cache_blocked_ref.h); a block is
// encode_block_ref of its fp16 values (converted exactly to fp32) and is never re-encoded.
// - Codebooks. One per (layer, K|V), or per (layer, K|V, KV head) with codebook_per_head. Built
//   at the first commit() that has a block of that (layer, K|V) to compress, from the symbol
//   histogram (quantize_block + histogram_add) of every complete block counting from k_done
//   (v_done) of every sequence and head at that moment, those still inside the window included,
//   so the codebook sees the whole prompt; then reused for every later block. A (layer, K|V)
//   with nothing to compress yet gets its codebook at a later commit().
// - attend(): causal attention of the last n appended tokens over [blocks + raw window], fp32,
//   exactly attention_ref, reading for a compressed token the values decode_block_ref returns
//   (a raw fallback block: its fp16 values). Each block is decoded once, when it is created; the
//   decoded values stay next to its bytes (decoding is deterministic).
// - bytes(): the blocks (headers, unit lengths, params, payload, padding, raw fallbacks) + the
//   codebooks + the raw window at 2 bytes per value. stats() breaks it down.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "compress/accounting.h"
#include "compress/codec_ref.h"
#include "compress/huffman.h"
#include "compress/kv_cache_blocked_ref.h"
#include "runtime/kv_options.h"

namespace kvcomp {

// The codec options of the --kv options.
CodecOptions codec_options(const KvOptions& kv);

class KvCompCacheRef : public BlockedKvCacheRef {
 public:
  // Throws Error when an option is out of range (validate, validate_codec_options).
  KvCompCacheRef(const KvShape& shape, const KvOptions& opts);

  KvStats layer_stats(int layer) const override;
  int64_t reserved_bytes() const override;  // the values, the blocks, the codebooks

  // Inspection, for tests and kvcomp kvstats.
  const CodecOptions& codec() const { return codec_; }
  float eb(KvPart p) const { return p == KvPart::kK ? codec_.eb_k : codec_.eb_v; }
  // The kind blocks are requested as (V: kVCompact may give kV blocks).
  BlockKind kind(KvPart p) const { return p == KvPart::kK ? codec_.k_kind() : codec_.v_kind(); }
  // The encoded bytes of block b of one (layer, seq, KV head).
  struct BlockBytes {
    const uint8_t* data;
    size_t bytes;
  };
  BlockBytes block(KvPart p, int layer, int seq, int head, int b) const;
  // The accounting of the blocks of one (layer, seq, KV head), their symbol histogram included
  // (no codebooks).
  const CodecBytes& stream_bytes(KvPart p, int layer, int seq, int head) const {
    return streams_[int(p)][stream_index(layer, seq, head)].acct;
  }
  // The codebook that codes (layer, head)'s blocks; nullptr until it is built.
  const Codebook* codebook(KvPart p, int layer, int head) const;

 private:
  // The blocks of one (layer, seq, KV head) and K|V, back to back.
  struct Stream {
    std::vector<uint8_t> bytes;
    std::vector<size_t> offsets;  // [n_blocks] start of each block in bytes
    CodecBytes acct;              // its blocks and their symbols (no codebooks)
  };

  int n_codebook_heads() const { return codec_.codebook_per_head ? shape_.n_kv_heads : 1; }
  void build_codebooks(KvPart p, int layer);
  void compress_blocks(KvPart p, int layer, const std::vector<int>& due) override;

  CodecOptions codec_;
  std::vector<Stream> streams_[2];      // [K|V][n_layers * n_seqs * n_kv_heads]
  std::vector<Codebook> codebooks_[2];  // [K|V][n_layers * n_codebook_heads]
  std::vector<char> built_[2];          // [K|V][n_layers]
};

}  // namespace kvcomp
