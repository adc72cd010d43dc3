#include "runtime/kv_cache_ref.h"

#include <vector>

#include "runtime/half.h"
#include "runtime/ops_ref.h"

namespace kvcomp {

DenseKvCacheRef::DenseKvCacheRef(const KvShape& shape, bool round_to_fp16)
    : shape_(shape),
      round_fp16_(round_to_fp16),
      k_(size_t(shape.n_layers) * shape.n_seqs),
      v_(size_t(shape.n_layers) * shape.n_seqs) {}

void DenseKvCacheRef::append(int layer, int seq, const float* k, const float* v, int n) {
  const size_t slot = size_t(layer) * shape_.n_seqs + seq;
  const int64_t count = int64_t(n) * shape_.n_kv_heads * shape_.head_dim;
  auto put = [&](std::vector<float>& dst, const float* src) {
    const size_t at = dst.size();
    dst.resize(at + count);
    for (int64_t i = 0; i < count; ++i) dst[at + i] = round_fp16_ ? round_fp16(src[i]) : src[i];
  };
  put(k_[slot], k);
  put(v_[slot], v);
}

void DenseKvCacheRef::attend(int layer, int seq, const float* q, int n, float* out) {
  const size_t slot = size_t(layer) * shape_.n_seqs + seq;
  const int64_t row = int64_t(shape_.n_kv_heads) * shape_.head_dim;
  const int n_k = int(k_[slot].size() / row);
  std::vector<int> pos(n);
  for (int i = 0; i < n; ++i) pos[i] = n_k - n + i;
  attention_ref(q, pos.data(), n, k_[slot].data(), v_[slot].data(), n_k, row, shape_.n_heads,
                shape_.n_kv_heads, shape_.head_dim, out);
}

int64_t DenseKvCacheRef::bytes() const {
  int64_t values = 0;
  for (const auto& k : k_) values += int64_t(k.size());
  return values * 2 * (round_fp16_ ? 2 : 4);
}

}  // namespace kvcomp
