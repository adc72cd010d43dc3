// The KV cache of the CPU backend. Attention is a method of the cache, so each storage scheme
// (dense, compressed, fixed-bit) decides how its values are read back.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/kv_options.h"

namespace kvcomp {

struct KvShape {
  int n_layers = 0;
  int n_seqs = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
};

class KvCacheRef {
 public:
  virtual ~KvCacheRef() = default;
  // Appends n tokens of one sequence to one layer. k (after RoPE), v: [n, n_kv_heads, head_dim].
  virtual void append(int layer, int seq, const float* k, const float* v, int n) = 0;
  // Attention of the last n appended tokens of `seq` (causal among themselves and over every
  // earlier token). q: [n, n_heads, head_dim]; out: [n, n_heads, head_dim].
  virtual void attend(int layer, int seq, const float* q, int n, float* out) = 0;
  // Called after every forward step (prefill or decode), once all layers have appended.
  virtual void commit() {}
  // Bytes the cache's contents take (what a store of exactly those values needs).
  virtual int64_t bytes() const = 0;
  // Host memory the cache holds, at capacity. The CPU caches keep every value attention reads
  // as fp32 (the compressed ones their decoded blocks too, next to the blocks).
  virtual int64_t reserved_bytes() const = 0;
  // The cache of one layer and sequence as attention reads it: k (after RoPE) and v, both
  // [len, n_kv_heads, head_dim] fp32. False when this cache cannot be read back.
  virtual bool read(int /*layer*/, int /*seq*/, std::vector<float>& /*k*/,
                    std::vector<float>& /*v*/) const {
    return false;
  }
};

// Uncompressed cache: fp32 values, or values rounded to fp16 (what a GPU fp16 cache holds).
// The compressed CPU caches derive from it: they keep what attention reads (decoded values of
// their blocks, then the raw window) in the same arrays and overwrite a block's values when
// they compress it, so append, attend and read are this class's.
class DenseKvCacheRef : public KvCacheRef {
 public:
  // Throws Error on a shape with a non-positive size or heads not a multiple of KV heads.
  DenseKvCacheRef(const KvShape& shape, bool round_to_fp16);
  void append(int layer, int seq, const float* k, const float* v, int n) override;
  void attend(int layer, int seq, const float* q, int n, float* out) override;
  int64_t bytes() const override;
  int64_t reserved_bytes() const override;
  bool read(int layer, int seq, std::vector<float>& k, std::vector<float>& v) const override;

 protected:
  size_t slot(int layer, int seq) const { return size_t(layer) * shape_.n_seqs + seq; }

  KvShape shape_;
  bool round_fp16_;
  std::vector<int> len_;                       // [n_layers * n_seqs] tokens held
  std::vector<std::vector<float>> values_[2];  // [K|V][n_layers * n_seqs] -> [len, n_kv, hd]
};

}  // namespace kvcomp
