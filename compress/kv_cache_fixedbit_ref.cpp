#include "compress/kv_cache_fixedbit_ref.h"

#include "runtime/error.h"
#include "runtime/half.h"
#include "runtime/ops_ref.h"

namespace kvcomp {

FixedBitCacheRef::FixedBitCacheRef(const KvShape& shape, const KvOptions& opts)
    : BlockedKvCacheRef(shape, opts), fmt_(fixedbit_formats(opts, shape.head_dim)) {
  for (auto& st : streams_) st.assign(size_t(shape.n_layers) * shape.n_seqs * shape.n_kv_heads, {});
}

void FixedBitCacheRef::compress_blocks(KvPart p, int layer, const std::vector<int>& due) {
  const int B = block_tokens(p), hd = shape_.head_dim;
  const size_t row = size_t(shape_.n_kv_heads) * hd;
  const FixedBitFormat& f = format(p);
  const size_t bb = size_t(block_bytes(p));
  parallel_seq_heads([&](int seq, int h) {
    std::vector<uint8_t>& st = streams_[int(p)][stream_index(layer, seq, h)];
    st.resize(st.size() + size_t(due[seq]) * bb);
    float* x = values_[int(p)][slot(layer, seq)].data();
    for (int i = 0; i < due[seq]; ++i) {
      // Quantized from the fp16 values the block holds, then overwritten with what dequantizing
      // its bytes gives: what attention reads from now on.
      const int t = done(p, layer, seq) + i * B;
      uint8_t* dst = st.data() + size_t(t / B) * bb;
      float* blk = x + size_t(t) * row + size_t(h) * hd;
      fixedbit_quantize_ref(f, blk, B, hd, int64_t(row), dst);
      fixedbit_dequantize_ref(f, dst, B, hd, blk, int64_t(row));
    }
  });
}

KvStats FixedBitCacheRef::layer_stats(int layer) const {
  KvStats r;
  r.compressed = true;
  uint64_t blocks[2] = {0, 0};
  for (int seq = 0; seq < shape_.n_seqs; ++seq)
    for (int p = 0; p < 2; ++p)
      blocks[p] += uint64_t(n_blocks(KvPart(p), layer, seq)) * shape_.n_kv_heads;
  add_window(r, layer);
  r.k = fixedbit_block_bytes(fmt_.k, block_tokens(KvPart::kK), shape_.head_dim, blocks[0]);
  r.v = fixedbit_block_bytes(fmt_.v, block_tokens(KvPart::kV), shape_.head_dim, blocks[1]);
  return r;
}

const uint8_t* FixedBitCacheRef::block(KvPart p, int layer, int seq, int head, int b) const {
  check(b >= 0 && b < n_blocks(p, layer, seq), "fixed-bit cache: block ", b, " of layer ", layer,
        " sequence ", seq, " does not exist (", n_blocks(p, layer, seq), " blocks)");
  const auto& st = streams_[int(p)][stream_index(layer, seq, head)];
  return st.data() + size_t(b) * size_t(block_bytes(p));
}

int64_t FixedBitCacheRef::reserved_bytes() const {
  int64_t b = DenseKvCacheRef::reserved_bytes();
  for (const auto& part : streams_)
    for (const auto& st : part) b += int64_t(st.capacity());
  return b;
}

}  // namespace kvcomp
