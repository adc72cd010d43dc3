#include "compress/kv_cache_kvcomp_ref.h"

#include <exception>

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
  return c;
}

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

KvCompCacheRef::KvCompCacheRef(const KvShape& shape, const KvOptions& opts)
    : DenseKvCacheRef(shape, /*round_to_fp16=*/true),
      codec_(codec_options(opts)),
      window_k_(opts.window_k),
      window_v_(opts.window_v) {
  validate(opts);
  validate_codec_options(codec_);
  check(shape.head_dim >= 1 && shape.head_dim <= kMaxHeadDim, "KVComp cache: head_dim ",
        shape.head_dim, " out of range 1..", kMaxHeadDim);
  const size_t slots = size_t(shape.n_layers) * shape.n_seqs;
  for (int p = 0; p < 2; ++p) {
    done_[p].assign(slots, 0);
    streams_[p].assign(slots * shape.n_kv_heads, {});
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
  for (int seq = 0; seq < shape_.n_seqs; ++seq) {
    const size_t s = slot(layer, seq);
    const float* x = values_[P][s].data();
    for (int h = 0; h < n_kv; ++h) {
      uint64_t* hh = hist.data() + size_t(n_cb > 1 ? h : 0) * alphabet;
      for (int t = done_[P][s]; t + B <= len_[s]; t += B) {
        const QuantBlock q = quantize_block(kind(p), x + size_t(t) * row + size_t(h) * hd, B, hd,
                                            row, eb(p), alphabet - 1);
        histogram_add(q, hh, alphabet);
      }
    }
  }
  for (int c = 0; c < n_cb; ++c) {
    codebooks_[P][size_t(layer) * n_cb + c] =
        Codebook::from_histogram(hist.data() + size_t(c) * alphabet, alphabet, codec_.max_code_len);
  }
  built_[P][layer] = 1;
}

void KvCompCacheRef::compress_due(KvPart p, int layer) {
  const int P = int(p);
  const int B = block_tokens(p), W = window_tokens(p);
  const int hd = shape_.head_dim, n_kv = shape_.n_kv_heads, n_seqs = shape_.n_seqs;
  auto due = [&](int seq) {
    const size_t s = slot(layer, seq);
    return len_[s] - done_[P][s] >= W + B;
  };
  bool any = false;
  for (int seq = 0; seq < n_seqs; ++seq) any = any || due(seq);
  if (!any) return;
  if (!built_[P][layer]) build_codebooks(p, layer);

  const size_t row = size_t(n_kv) * hd;
  const BlockKind bk = kind(p);
  const float e = eb(p);
  std::exception_ptr error;
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int seq = 0; seq < n_seqs; ++seq) {
    for (int h = 0; h < n_kv; ++h) {
      try {
        const size_t s = slot(layer, seq);
        Stream& st = streams_[P][stream_index(layer, seq, h)];
        const Codebook& cb = *codebook(p, layer, h);
        float* x = values_[P][s].data();
        for (int t = done_[P][s]; len_[s] - t >= W + B; t += B) {
          // The block is encoded from the fp16 values it holds, then overwritten with what the
          // decoder returns: what attention reads from now on.
          float* blk = x + size_t(t) * row + size_t(h) * hd;
          const EncodedBlock eb_out =
              encode_block_ref(bk, blk, B, hd, row, e, cb, st.bytes, &st.acct);
          st.offsets.push_back(eb_out.offset);
          decode_block_ref(st.bytes.data() + eb_out.offset, eb_out.bytes, cb, blk, row);
        }
      } catch (...) {
#pragma omp critical(kvcomp_cache_error)
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
  for (int seq = 0; seq < n_seqs; ++seq) {
    const size_t s = slot(layer, seq);
    while (len_[s] - done_[P][s] >= W + B) done_[P][s] += B;
  }
}

void KvCompCacheRef::commit() {
  for (int l = 0; l < shape_.n_layers; ++l) {
    compress_due(KvPart::kK, l);
    compress_due(KvPart::kV, l);
  }
}

KvStats KvCompCacheRef::layer_stats(int layer) const {
  KvStats r;
  r.compressed = true;
  const uint64_t row = uint64_t(shape_.n_kv_heads) * shape_.head_dim;
  for (int seq = 0; seq < shape_.n_seqs; ++seq) {
    const size_t s = slot(layer, seq);
    for (int h = 0; h < shape_.n_kv_heads; ++h) {
      r.k += streams_[0][stream_index(layer, seq, h)].acct;
      r.v += streams_[1][stream_index(layer, seq, h)].acct;
    }
    r.window_k_values += uint64_t(len_[s] - done_[0][s]) * row;
    r.window_v_values += uint64_t(len_[s] - done_[1][s]) * row;
  }
  const int n_cb = n_codebook_heads();
  for (int c = 0; c < n_cb; ++c) {
    if (built_[0][layer]) r.k.add_codebook(codebooks_[0][size_t(layer) * n_cb + c]);
    if (built_[1][layer]) r.v.add_codebook(codebooks_[1][size_t(layer) * n_cb + c]);
  }
  return r;
}

KvStats KvCompCacheRef::stats() const {
  KvStats r;
  r.compressed = true;
  for (int l = 0; l < shape_.n_layers; ++l) r += layer_stats(l);
  return r;
}

int64_t KvCompCacheRef::bytes() const {
  return int64_t(stats().total_bytes());
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

}  // namespace kvcomp
