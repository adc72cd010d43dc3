#include "runtime/kv_cache_ref.h"

#include <vector>

#include "runtime/error.h"
#include "runtime/half.h"
#include "runtime/ops_ref.h"

namespace kvcomp {

DenseKvCacheRef::DenseKvCacheRef(const KvShape& shape, bool round_to_fp16)
    : shape_(shape), round_fp16_(round_to_fp16) {
  check(shape.n_layers >= 1 && shape.n_seqs >= 1 && shape.n_kv_heads >= 1 && shape.n_heads >= 1 &&
            shape.n_heads % shape.n_kv_heads == 0 && shape.head_dim >= 1,
        "KV cache: bad shape: ", shape.n_layers, " layers, ", shape.n_seqs, " sequences, ",
        shape.n_heads, " heads, ", shape.n_kv_heads, " KV heads, head_dim ", shape.head_dim);
  const size_t slots = size_t(shape.n_layers) * shape.n_seqs;
  len_.assign(slots, 0);
  for (auto& v : values_) v.assign(slots, {});
}

void DenseKvCacheRef::append(int layer, int seq, const float* k, const float* v, int n) {
  check(layer >= 0 && layer < shape_.n_layers && seq >= 0 && seq < shape_.n_seqs,
        "KV cache: layer ", layer, " / sequence ", seq, " outside the cache");
  const size_t s = slot(layer, seq);
  const size_t count = size_t(n) * shape_.n_kv_heads * shape_.head_dim;
  auto put = [&](std::vector<float>& dst, const float* src) {
    const size_t at = dst.size();
    dst.resize(at + count);
    for (size_t i = 0; i < count; ++i) dst[at + i] = round_fp16_ ? round_fp16(src[i]) : src[i];
  };
  put(values_[0][s], k);
  put(values_[1][s], v);
  len_[s] += n;
}

void DenseKvCacheRef::attend(int layer, int seq, const float* q, int n, float* out) {
  const size_t s = slot(layer, seq);
  const int64_t row = int64_t(shape_.n_kv_heads) * shape_.head_dim;
  const int n_k = len_[s];
  std::vector<int> pos(n);
  for (int i = 0; i < n; ++i) pos[i] = n_k - n + i;
  attention_ref(q, pos.data(), n, values_[0][s].data(), values_[1][s].data(), n_k, row,
                shape_.n_heads, shape_.n_kv_heads, shape_.head_dim, out);
}

int64_t DenseKvCacheRef::bytes() const {
  int64_t tokens = 0;
  for (int l : len_) tokens += l;
  return tokens * 2 * shape_.n_kv_heads * shape_.head_dim * (round_fp16_ ? 2 : 4);
}

int64_t DenseKvCacheRef::reserved_bytes() const {
  size_t b = len_.capacity() * sizeof(int);
  for (const auto& part : values_)
    for (const auto& v : part) b += v.capacity() * sizeof(float);
  return int64_t(b);
}

bool DenseKvCacheRef::read(int layer, int seq, std::vector<float>& k, std::vector<float>& v) const {
  check(layer >= 0 && layer < shape_.n_layers && seq >= 0 && seq < shape_.n_seqs,
        "KV cache: layer ", layer, " / sequence ", seq, " outside the cache");
  k = values_[0][slot(layer, seq)];
  v = values_[1][slot(layer, seq)];
  return true;
}

}  // namespace kvcomp
