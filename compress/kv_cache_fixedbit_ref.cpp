#include "compress/kv_cache_fixedbit_ref.h"

#include <exception>

#include "runtime/error.h"
#include "runtime/half.h"
#include "runtime/ops_ref.h"

namespace kvcomp {

FixedBitCacheRef::FixedBitCacheRef(const KvShape& shape, const KvOptions& opts)
    : DenseKvCacheRef(shape, /*round_to_fp16=*/true),
      block_k_(opts.block_k),
      block_v_(opts.block_v),
      window_k_(opts.window_k),
      window_v_(opts.window_v) {
  validate(opts);
  fmt_ = fixedbit_formats(opts, shape.head_dim);
  const size_t slots = size_t(shape.n_layers) * shape.n_seqs;
  for (int p = 0; p < 2; ++p) {
    done_[p].assign(slots, 0);
    streams_[p].assign(slots * shape.n_kv_heads, {});
  }
}

void FixedBitCacheRef::quantize_due(KvPart p, int layer) {
  const int P = int(p);
  const int B = block_tokens(p), W = window_tokens(p);
  const int hd = shape_.head_dim, n_kv = shape_.n_kv_heads, n_seqs = shape_.n_seqs;
  const size_t row = size_t(n_kv) * hd;
  const FixedBitFormat& f = format(p);
  const size_t bb = size_t(block_bytes(p));
  // Blocks due per sequence; the streams grow first so the parallel loop allocates nothing.
  std::vector<int> due(n_seqs, 0);
  bool any = false;
  for (int seq = 0; seq < n_seqs; ++seq) {
    const size_t s = slot(layer, seq);
    while (len_[s] - done_[P][s] - due[seq] * B >= W + B) ++due[seq];
    any = any || due[seq] > 0;
    for (int h = 0; h < n_kv; ++h) {
      auto& st = streams_[P][stream_index(layer, seq, h)];
      st.resize(st.size() + size_t(due[seq]) * bb);
    }
  }
  if (!any) return;
  std::exception_ptr error;
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int seq = 0; seq < n_seqs; ++seq) {
    for (int h = 0; h < n_kv; ++h) {
      try {
        const size_t s = slot(layer, seq);
        std::vector<uint8_t>& st = streams_[P][stream_index(layer, seq, h)];
        float* x = values_[P][s].data();
        for (int i = 0; i < due[seq]; ++i) {
          const int t = done_[P][s] + i * B;
          // Quantized from the fp16 values the block holds, then overwritten with what
          // dequantizing its bytes gives: what attention reads from now on.
          uint8_t* dst = st.data() + size_t(t / B) * bb;
          float* blk = x + size_t(t) * row + size_t(h) * hd;
          fixedbit_quantize_ref(f, blk, B, hd, int64_t(row), dst);
          fixedbit_dequantize_ref(f, dst, B, hd, blk, int64_t(row));
        }
      } catch (...) {
#pragma omp critical(kvcomp_fixedbit_error)
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
  for (int seq = 0; seq < n_seqs; ++seq) done_[P][slot(layer, seq)] += due[seq] * B;
}

void FixedBitCacheRef::commit() {
  for (int l = 0; l < shape_.n_layers; ++l) {
    quantize_due(KvPart::kK, l);
    quantize_due(KvPart::kV, l);
  }
}

KvStats FixedBitCacheRef::layer_stats(int layer) const {
  KvStats r;
  r.compressed = true;
  const int hd = shape_.head_dim, n_kv = shape_.n_kv_heads;
  const uint64_t row = uint64_t(n_kv) * hd;
  uint64_t blocks[2] = {0, 0};
  for (int seq = 0; seq < shape_.n_seqs; ++seq) {
    const size_t s = slot(layer, seq);
    for (int p = 0; p < 2; ++p) blocks[p] += uint64_t(n_blocks(KvPart(p), layer, seq)) * n_kv;
    r.window_k_values += uint64_t(len_[s] - done_[0][s]) * row;
    r.window_v_values += uint64_t(len_[s] - done_[1][s]) * row;
  }
  r.k = fixedbit_block_bytes(fmt_.k, block_k_, hd, blocks[0]);
  r.v = fixedbit_block_bytes(fmt_.v, block_v_, hd, blocks[1]);
  return r;
}

KvStats FixedBitCacheRef::stats() const {
  KvStats r;
  r.compressed = true;
  for (int l = 0; l < shape_.n_layers; ++l) r += layer_stats(l);
  return r;
}

int64_t FixedBitCacheRef::bytes() const {
  return int64_t(stats().total_bytes());
}

const uint8_t* FixedBitCacheRef::block(KvPart p, int layer, int seq, int head, int b) const {
  check(b >= 0 && b < n_blocks(p, layer, seq), "fixed-bit cache: block ", b, " of layer ", layer,
        " sequence ", seq, " does not exist (", n_blocks(p, layer, seq), " blocks)");
  const auto& st = streams_[int(p)][stream_index(layer, seq, head)];
  return st.data() + size_t(b) * size_t(block_bytes(p));
}

}  // namespace kvcomp
