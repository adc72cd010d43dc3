// What the compressed KV caches of the CPU backend share (KvCompCacheRef, FixedBitCacheRef), and
// their byte accounting (KvStats, also reported by the GPU caches).
//
// Layout. Per layer, sequence and KV head, K tokens [0, k_done) live in stored blocks of block_k
// tokens each, tokens [k_done, len) are raw (the recent window); V likewise with block_v and
// window_v. k_done and v_done depend only on the sequence's length, so every KV head of a
// (layer, sequence) has the same ones. Values enter rounded to fp16 (what the GPU caches store).
// commit(), after every forward step once all layers have appended: for every (layer, seq), while
// len - k_done >= window_k + block_k, K tokens [k_done, k_done + block_k) become one block of
// every KV head (compress_blocks) and k_done advances by block_k; V the same. Nothing is stored
// twice. attend() is DenseKvCacheRef's over values(): what a derived cache writes back for the
// tokens of its blocks (their decoded values), the fp16-rounded values for the window.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "compress/accounting.h"
#include "runtime/kv_cache_ref.h"
#include "runtime/kv_options.h"

namespace kvcomp {

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

class BlockedKvCacheRef : public DenseKvCacheRef {
 public:
  void commit() override;
  // stats().total_bytes(): blocks, codebooks and the raw window.
  int64_t bytes() const override;

  KvStats stats() const;
  // The blocks (and codebooks) of one layer and its window.
  virtual KvStats layer_stats(int layer) const = 0;

  // Inspection, for tests and kvcomp kvstats.
  const KvShape& shape() const { return shape_; }
  int length(int layer, int seq) const { return len_[slot(layer, seq)]; }
  // Tokens of (layer, seq) held in blocks: k_done or v_done.
  int done(KvPart p, int layer, int seq) const { return done_[int(p)][slot(layer, seq)]; }
  int block_tokens(KvPart p) const { return block_[int(p)]; }
  int window_tokens(KvPart p) const { return window_[int(p)]; }
  int n_blocks(KvPart p, int layer, int seq) const { return done(p, layer, seq) / block_tokens(p); }
  // What attention reads, [len, n_kv_heads, head_dim]: decoded values for tokens in blocks, the
  // fp16-rounded values for the window.
  const std::vector<float>& values(KvPart p, int layer, int seq) const {
    return values_[int(p)][slot(layer, seq)];
  }

 protected:
  // Throws Error when an option is out of range (validate).
  BlockedKvCacheRef(const KvShape& shape, const KvOptions& opts);

  size_t stream_index(int layer, int seq, int head) const {
    return slot(layer, seq) * shape_.n_kv_heads + head;
  }
  // Stores the blocks of (p, layer) due at this commit: due[seq] blocks of every KV head of each
  // sequence, starting at token done(p, layer, seq); their tokens' values() are overwritten with
  // what attention reads from now on. Called when some block is due; done advances afterwards.
  virtual void compress_blocks(KvPart p, int layer, const std::vector<int>& due) = 0;
  // f(seq, head) for every pair, in parallel; the first exception thrown is rethrown.
  void parallel_seq_heads(const std::function<void(int seq, int head)>& f) const;
  // Adds layer's window values to r.
  void add_window(KvStats& r, int layer) const;

 private:
  int block_[2], window_[2];
  std::vector<int> done_[2];  // [K|V][n_layers * n_seqs]
};

}  // namespace kvcomp
