// The KVComp-compressed KV cache of the CPU backend: the ground truth the GPU cache is tested
// against, and the cache that lets a machine without a GPU measure accuracy and bytes.
//
// Semantics (the GPU cache does exactly this; tests compare the two block for block):
// - Layout. Per layer, sequence and KV head, K tokens [0, k_done) live in compressed K blocks of
//   block_k tokens each, tokens [k_done, len) are raw (the recent window). V likewise with
//   block_v and window_v. k_done and v_done depend only on the sequence's length, so every KV
//   head of a (layer, sequence) has the same ones.
// - Rounding. Values enter the cache rounded to fp16 (what the GPU cache stores): the raw window
//   holds round_fp16(x), and the encoder quantizes those fp16 values (converted exactly to fp32).
// - commit(), after every forward step once all layers have appended: for every (layer, seq,
//   head), while len - k_done >= window_k + block_k, K tokens [k_done, k_done + block_k) become
//   one block (encode_block_ref) and k_done advances by block_k; V the same with its own block
//   and window. A block is never re-encoded.
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
#include "runtime/kv_cache_ref.h"
#include "runtime/kv_options.h"

namespace kvcomp {

// The codec options of the --kv options.
CodecOptions codec_options(const KvOptions& kv);

// Byte accounting of a KV cache. A dense cache reports compressed == false and zeros.
struct KvStats {
  bool compressed = false;
  CodecBytes k;                  // K blocks and K codebooks
  CodecBytes v;                  // V blocks and V codebooks
  uint64_t window_k_values = 0;  // K values in the raw recent window
  uint64_t window_v_values = 0;  // V values in the raw recent window

  uint64_t window_bytes() const { return 2 * (window_k_values + window_v_values); }
  // Blocks and codebooks of K and V (the recent window excluded).
  uint64_t compressed_bytes() const { return k.total_bytes() + v.total_bytes(); }
  uint64_t total_bytes() const { return compressed_bytes() + window_bytes(); }
  // fp16 bytes of the values held in blocks, and of every value held.
  uint64_t fp16_block_bytes() const { return 2 * (k.n_values + v.n_values); }
  uint64_t fp16_bytes() const { return fp16_block_bytes() + window_bytes(); }
  // Bits per value of the blocks, metadata and codebooks included (window excluded).
  double k_bits() const { return k.bits_per_value(); }
  double v_bits() const { return v.bits_per_value(); }
  // fp16 bytes / compressed bytes, window excluded (0 when nothing is compressed) and included.
  double ratio() const;
  double ratio_with_window() const;
  uint64_t raw_blocks() const { return k.n_raw_blocks + v.n_raw_blocks; }

  KvStats& operator+=(const KvStats& o);
};

enum class KvPart { kK = 0, kV = 1 };

class KvCompCacheRef : public DenseKvCacheRef {
 public:
  // Throws Error when an option is out of range (validate, validate_codec_options).
  KvCompCacheRef(const KvShape& shape, const KvOptions& opts);

  void commit() override;
  int64_t bytes() const override;

  KvStats stats() const;
  KvStats layer_stats(int layer) const;

  // Inspection, for tests and kvcomp kvstats.
  const KvShape& shape() const { return shape_; }
  const CodecOptions& codec() const { return codec_; }
  int length(int layer, int seq) const { return len_[slot(layer, seq)]; }
  // Tokens of (layer, seq) held in blocks: k_done or v_done.
  int done(KvPart p, int layer, int seq) const { return done_[int(p)][slot(layer, seq)]; }
  int block_tokens(KvPart p) const { return p == KvPart::kK ? codec_.block_k : codec_.block_v; }
  int window_tokens(KvPart p) const { return p == KvPart::kK ? window_k_ : window_v_; }
  float eb(KvPart p) const { return p == KvPart::kK ? codec_.eb_k : codec_.eb_v; }
  // The kind blocks are requested as (V: kVCompact may give kV blocks).
  BlockKind kind(KvPart p) const { return p == KvPart::kK ? codec_.k_kind() : codec_.v_kind(); }
  int n_blocks(KvPart p, int layer, int seq) const { return done(p, layer, seq) / block_tokens(p); }
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
  // What attention reads, [len, n_kv_heads, head_dim]: decoded values for tokens in blocks, the
  // fp16-rounded values for the window.
  const std::vector<float>& values(KvPart p, int layer, int seq) const {
    return values_[int(p)][slot(layer, seq)];
  }

 private:
  // The blocks of one (layer, seq, KV head) and K|V, back to back.
  struct Stream {
    std::vector<uint8_t> bytes;
    std::vector<size_t> offsets;  // [n_blocks] start of each block in bytes
    CodecBytes acct;              // its blocks and their symbols (no codebooks)
  };

  size_t stream_index(int layer, int seq, int head) const {
    return slot(layer, seq) * shape_.n_kv_heads + head;
  }
  int n_codebook_heads() const { return codec_.codebook_per_head ? shape_.n_kv_heads : 1; }
  void build_codebooks(KvPart p, int layer);
  void compress_due(KvPart p, int layer);

  CodecOptions codec_;
  int window_k_, window_v_;
  std::vector<int> done_[2];            // [K|V][n_layers * n_seqs]
  std::vector<Stream> streams_[2];      // [K|V][n_layers * n_seqs * n_kv_heads]
  std::vector<Codebook> codebooks_[2];  // [K|V][n_layers * n_codebook_heads]
  std::vector<char> built_[2];          // [K|V][n_layers]
};

}  // namespace kvcomp
