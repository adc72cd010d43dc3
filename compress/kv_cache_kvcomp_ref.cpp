#include "compress/kv_cache_kvcomp_ref.h"

#include "runtime/error.h"
#include "runtime/half.h"
#include "runtime/ops_ref.h"

namespace kvcomp {

CodecOptions codec_options(const KvOptions& kv) {
  CodecOptions c;
  c.eb_k = kv.eb_k;
  c.eb_v = kv.eb_v;
  c.block_k = kv.block_k;
  c.block_v = kv.block_v;
  c.max_code_len = kv.max_code_len;
  c.k_channelwise = kv.k_channelwise;
  c.codebook_per_head = kv.codebook_per_head;
  c.v_params16 = kv.v_params16;
  c.fixed_codes = kv.mode == KvMode::kKvcompFixed;
  return c;
}

KvCompCacheRef::KvCompCacheRef(const KvShape& shape, const KvOptions& opts)
    : BlockedKvCacheRef(shape, opts), codec_(codec_options(opts)) {
  validate_codec_options(codec_);
  check(shape.head_dim >= 1 && shape.head_dim <= kMaxHeadDim, "KVComp cache: head_dim ",
        shape.head_dim, " out of range 1..", kMaxHeadDim);
  for (int p = 0; p < 2; ++p) {
    streams_[p].assign(size_t(shape.n_layers) * shape.n_seqs * shape.n_kv_heads, {});
    codebooks_[p].assign(size_t(shape.n_layers) * n_codebook_heads(), {});
    built_[p].assign(shape.n_layers, 0);
  }
}

void KvCompCacheRef::build_codebooks(KvPart p, int layer) {
  const int P = int(p);
  const int B = block_tokens(p), hd = shape_.head_dim, n_kv = shape_.n_kv_heads;
  const size_t row = size_t(n_kv) * hd;
  const int alphabet = p == KvPart::kK ? codec_.k_alphabet() : codec_.v_alphabet();
  const int n_cb = n_codebook_heads();
  std::vector<uint64_t> hist(size_t(n_cb) * alphabet, 0);
  // A fixed-length code does not depend on the data: no histogram.
  for (int seq = 0; seq < shape_.n_seqs && !codec_.fixed_codes; ++seq) {
    const size_t s = slot(layer, seq);
    const float* x = values_[P][s].data();
    for (int h = 0; h < n_kv; ++h) {
      uint64_t* hh = hist.data() + size_t(n_cb > 1 ? h : 0) * alphabet;
      for (int t = done(p, layer, seq); t + B <= len_[s]; t += B) {
        const QuantBlock q = quantize_block(kind(p), x + size_t(t) * row + size_t(h) * hd, B, hd,
                                            row, eb(p), alphabet - 1);
        histogram_add(q, hh, alphabet);
      }
    }
  }
  for (int c = 0; c < n_cb; ++c) {
    codebooks_[P][size_t(layer) * n_cb + c] =
        make_codebook(codec_, hist.data() + size_t(c) * alphabet, alphabet);
  }
  built_[P][layer] = 1;
}

void KvCompCacheRef::compress_blocks(KvPart p, int layer, const std::vector<int>& due) {
  if (!built_[int(p)][layer]) build_codebooks(p, layer);
  const int B = block_tokens(p), hd = shape_.head_dim;
  const size_t row = size_t(shape_.n_kv_heads) * hd;
  const BlockKind bk = kind(p);
  const float e = eb(p);
  parallel_seq_heads([&](int seq, int h) {
    Stream& st = streams_[int(p)][stream_index(layer, seq, h)];
    const Codebook& cb = *codebook(p, layer, h);
    float* x = values_[int(p)][slot(layer, seq)].data();
    for (int i = 0; i < due[seq]; ++i) {
      // The block is encoded from the fp16 values it holds, then overwritten with what the
      // decoder returns: what attention reads from now on.
      const int t = done(p, layer, seq) + i * B;
      float* blk = x + size_t(t) * row + size_t(h) * hd;
      const EncodedBlock out = encode_block_ref(bk, blk, B, hd, row, e, cb, st.bytes, &st.acct);
      st.offsets.push_back(out.offset);
      decode_block_ref(st.bytes.data() + out.offset, out.bytes, cb, blk, row);
    }
  });
}

KvStats KvCompCacheRef::layer_stats(int layer) const {
  KvStats r;
  r.compressed = true;
  for (int seq = 0; seq < shape_.n_seqs; ++seq)
    for (int h = 0; h < shape_.n_kv_heads; ++h) {
      r.k += streams_[0][stream_index(layer, seq, h)].acct;
      r.v += streams_[1][stream_index(layer, seq, h)].acct;
    }
  add_window(r, layer);
  const int n_cb = n_codebook_heads();
  for (int c = 0; c < n_cb; ++c) {
    if (built_[0][layer]) r.k.add_codebook(codebooks_[0][size_t(layer) * n_cb + c]);
    if (built_[1][layer]) r.v.add_codebook(codebooks_[1][size_t(layer) * n_cb + c]);
  }
  return r;
}

KvCompCacheRef::BlockBytes KvCompCacheRef::block(KvPart p, int layer, int seq, int head,
                                                 int b) const {
  const Stream& st = streams_[int(p)][stream_index(layer, seq, head)];
  check(b >= 0 && size_t(b) < st.offsets.size(), "KVComp cache: block ", b, " of layer ", layer,
        " sequence ", seq, " head ", head, " does not exist (", st.offsets.size(), " blocks)");
  const size_t end =
      size_t(b) + 1 < st.offsets.size() ? st.offsets[size_t(b) + 1] : st.bytes.size();
  return {st.bytes.data() + st.offsets[size_t(b)], end - st.offsets[size_t(b)]};
}

const Codebook* KvCompCacheRef::codebook(KvPart p, int layer, int head) const {
  if (!built_[int(p)][layer]) return nullptr;
  return &codebooks_[int(p)][size_t(layer) * n_codebook_heads() +
                             size_t(codec_.codebook_per_head ? head : 0)];
}

int64_t KvCompCacheRef::reserved_bytes() const {
  int64_t b = DenseKvCacheRef::reserved_bytes();
  for (const auto& part : streams_)
    for (const auto& st : part)
      b += int64_t(st.bytes.capacity() + st.offsets.capacity() * sizeof(size_t));
  for (const auto& part : codebooks_)
    for (const auto& cb : part) b += int64_t(cb.stored_bytes());
  return b;
}

}  // namespace kvcomp
