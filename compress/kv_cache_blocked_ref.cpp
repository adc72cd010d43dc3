#include "compress/kv_cache_blocked_ref.h"

#include <exception>

#include "runtime/error.h"

namespace kvcomp {

double KvStats::ratio() const {
  return compressed_bytes() == 0 ? 0.0 : double(fp16_block_bytes()) / double(compressed_bytes());
}

double KvStats::ratio_with_window() const {
  return total_bytes() == 0 ? 0.0 : double(fp16_bytes()) / double(total_bytes());
}

KvStats& KvStats::operator+=(const KvStats& o) {
  compressed = compressed || o.compressed;
  k += o.k;
  v += o.v;
  window_k_values += o.window_k_values;
  window_v_values += o.window_v_values;
  return *this;
}

BlockedKvCacheRef::BlockedKvCacheRef(const KvShape& shape, const KvOptions& opts)
    : DenseKvCacheRef(shape, /*round_to_fp16=*/true),
      block_{opts.block_k, opts.block_v},
      window_{opts.window_k, opts.window_v} {
  validate(opts);
  for (auto& d : done_) d.assign(size_t(shape.n_layers) * shape.n_seqs, 0);
}

void BlockedKvCacheRef::commit() {
  for (int l = 0; l < shape_.n_layers; ++l)
    for (KvPart p : {KvPart::kK, KvPart::kV}) {
      const int P = int(p), B = block_[P], W = window_[P];
      std::vector<int> due(shape_.n_seqs, 0);
      bool any = false;
      for (int seq = 0; seq < shape_.n_seqs; ++seq) {
        const size_t s = slot(l, seq);
        while (len_[s] - done_[P][s] - due[seq] * B >= W + B) ++due[seq];
        any = any || due[seq] > 0;
      }
      if (!any) continue;
      compress_blocks(p, l, due);
      for (int seq = 0; seq < shape_.n_seqs; ++seq) done_[P][slot(l, seq)] += due[seq] * B;
    }
}

int64_t BlockedKvCacheRef::bytes() const {
  return int64_t(stats().total_bytes());
}

KvStats BlockedKvCacheRef::stats() const {
  KvStats r;
  r.compressed = true;
  for (int l = 0; l < shape_.n_layers; ++l) r += layer_stats(l);
  return r;
}

void BlockedKvCacheRef::parallel_seq_heads(const std::function<void(int, int)>& f) const {
  const int n_seqs = shape_.n_seqs, n_kv = shape_.n_kv_heads;
  std::exception_ptr error;
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int seq = 0; seq < n_seqs; ++seq) {
    for (int h = 0; h < n_kv; ++h) {
      try {
        f(seq, h);
      } catch (...) {
#pragma omp critical(kvcomp_blocked_cache_error)
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
}

void BlockedKvCacheRef::add_window(KvStats& r, int layer) const {
  const uint64_t row = uint64_t(shape_.n_kv_heads) * shape_.head_dim;
  for (int seq = 0; seq < shape_.n_seqs; ++seq) {
    const size_t s = slot(layer, seq);
    r.window_k_values += uint64_t(len_[s] - done_[0][s]) * row;
    r.window_v_values += uint64_t(len_[s] - done_[1][s]) * row;
  }
}

}  // namespace kvcomp
