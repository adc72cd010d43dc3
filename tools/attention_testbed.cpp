#include "tools/attention_testbed.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "runtime/error.h"
#include "runtime/half.h"

namespace kvcomp::testbed {

namespace {

template <typename T>
DeviceBuffer upload(const std::vector<T>& v, const char* what) {
  DeviceBuffer b(std::max<size_t>(v.size() * sizeof(T), 16), what);
  if (!v.empty()) b.upload(v.data(), v.size() * sizeof(T));
  return b;
}

struct Encoded {
  std::vector<uint8_t> bytes;
  std::vector<size_t> k_off, v_off;  // block offsets in bytes
  std::vector<float> k_dec, v_dec;   // [len][hd]
  CodecBytes k_acct, v_acct;
};

}  // namespace

KvcompImage build_kvcomp_image(const HostKv& kv, int n_heads, const ImageOptions& o) {
  const CodecOptions& co = o.codec;
  validate_codec_options(co);
  const int KV = kv.n_kv_heads, hd = kv.head_dim, U = kv.n_unique;
  const int BK = co.block_k, BV = co.block_v;
  KvcompImage img;
  img.h_k_done.resize(kv.n_seqs);
  img.h_v_done.resize(kv.n_seqs);
  for (int s = 0; s < kv.n_seqs; ++s) {
    img.h_k_done[s] = std::max(0, (kv.len[s] - o.window_k) / BK * BK);
    img.h_v_done[s] = std::max(0, (kv.len[s] - o.window_v) / BV * BV);
  }
  // Codebooks from every complete block of the unique sequences (one per layer: K and V).
  const BlockKind kkind = co.k_kind();
  const int ka = co.k_alphabet(), va = co.v_alphabet();
  std::vector<uint64_t> kh(ka, 0), vh(va, 0);
  for (int u = 0; u < U; ++u)
    for (int h = 0; h < KV; ++h) {
      const auto& k = kv.kh(u, h);
      const auto& v = kv.vh(u, h);
      for (int t = 0; t + BK <= kv.len[u]; t += BK)
        histogram_add(quantize_block(kkind, k.data() + size_t(t) * hd, BK, hd, hd, co.eb_k, ka - 1),
                      kh.data(), ka);
      for (int t = 0; t + BV <= kv.len[u]; t += BV)
        histogram_add(
            quantize_block(co.v_kind(), v.data() + size_t(t) * hd, BV, hd, hd, co.eb_v, va - 1),
            vh.data(), va);
    }
  const Codebook kcb = make_codebook(co, kh.data(), ka);
  const Codebook vcb = make_codebook(co, vh.data(), va);

  // Encode each unique (sequence, head) on its own thread.
  std::vector<Encoded> enc(size_t(U) * KV);
#pragma omp parallel for schedule(dynamic)
  for (int i = 0; i < U * KV; ++i) {
    const int u = i / KV, h = i % KV;
    Encoded& e = enc[i];
    const auto& k = kv.kh(u, h);
    const auto& v = kv.vh(u, h);
    const int len = kv.len[u];
    e.k_dec.assign(k.begin(), k.begin() + size_t(len) * hd);
    e.v_dec.assign(v.begin(), v.begin() + size_t(len) * hd);
    int nb = 0;
    for (int t = 0; t < img.h_k_done[u]; t += BK, ++nb) {
      const bool raw = o.force_raw_every > 0 && nb % o.force_raw_every == o.force_raw_every - 1;
      const size_t at = e.bytes.size();
      // A block coded at a much finer bound than its codebook's alphabet goes raw (symbols).
      encode_block_ref(kkind, k.data() + size_t(t) * hd, BK, hd, hd, raw ? co.eb_k / 16 : co.eb_k,
                       kcb, e.bytes, &e.k_acct);
      e.k_off.push_back(at);
      decode_block_ref(e.bytes.data() + at, e.bytes.size() - at, kcb,
                       e.k_dec.data() + size_t(t) * hd, hd);
    }
    nb = 0;
    for (int t = 0; t < img.h_v_done[u]; t += BV, ++nb) {
      const bool raw = o.force_raw_every > 0 && nb % o.force_raw_every == o.force_raw_every - 1;
      const size_t at = e.bytes.size();
      encode_block_ref(co.v_kind(), v.data() + size_t(t) * hd, BV, hd, hd,
                       raw ? co.eb_v / 16 : co.eb_v, vcb, e.bytes, &e.v_acct);
      e.v_off.push_back(at);
      decode_block_ref(e.bytes.data() + at, e.bytes.size() - at, vcb,
                       e.v_dec.data() + size_t(t) * hd, hd);
    }
  }
  // Arena: every sequence gets its own copy of its unique sequence's blocks.
  size_t total = 0;
  for (int s = 0; s < kv.n_seqs; ++s)
    for (int h = 0; h < KV; ++h) total += enc[(s % U) * KV + h].bytes.size();
  img.arena = DeviceBuffer(std::max<size_t>(total, 16), "compressed blocks");
  const int max_kb = std::max(1, *std::max_element(img.h_k_done.begin(), img.h_k_done.end()) / BK);
  const int max_vb = std::max(1, *std::max_element(img.h_v_done.begin(), img.h_v_done.end()) / BV);
  std::vector<const uint8_t*> kidx(size_t(kv.n_seqs) * KV * max_kb, nullptr),
      vidx(size_t(kv.n_seqs) * KV * max_vb, nullptr);
  size_t at = 0;
  const uint8_t* base = img.arena.as<uint8_t>();
  for (int s = 0; s < kv.n_seqs; ++s)
    for (int h = 0; h < KV; ++h) {
      const Encoded& e = enc[(s % U) * KV + h];
      if (!e.bytes.empty()) img.arena.upload(e.bytes.data(), e.bytes.size(), at);
      for (size_t b = 0; b < e.k_off.size(); ++b)
        kidx[(size_t(s) * KV + h) * max_kb + b] = base + at + e.k_off[b];
      for (size_t b = 0; b < e.v_off.size(); ++b)
        vidx[(size_t(s) * KV + h) * max_vb + b] = base + at + e.v_off[b];
      at += e.bytes.size();
    }
  img.compressed_bytes = int64_t(total);
  img.k_index = upload(kidx, "K block index");
  img.v_index = upload(vidx, "V block index");
  // Recent windows in rings.
  const int cap_k = o.window_k + BK, cap_v = o.window_v + BV;
  std::vector<uint16_t> rk(size_t(kv.n_seqs) * KV * cap_k * hd, 0),
      rv(size_t(kv.n_seqs) * KV * cap_v * hd, 0);
  for (int s = 0; s < kv.n_seqs; ++s)
    for (int h = 0; h < KV; ++h) {
      const auto& k = kv.kh(s, h);
      const auto& v = kv.vh(s, h);
      for (int t = img.h_k_done[s]; t < kv.len[s]; ++t)
        for (int c = 0; c < hd; ++c)
          rk[((size_t(s) * KV + h) * cap_k + t % cap_k) * hd + c] =
              float_to_fp16(k[size_t(t) * hd + c]);
      for (int t = img.h_v_done[s]; t < kv.len[s]; ++t)
        for (int c = 0; c < hd; ++c)
          rv[((size_t(s) * KV + h) * cap_v + t % cap_v) * hd + c] =
              float_to_fp16(v[size_t(t) * hd + c]);
      img.window_bytes +=
          int64_t(kv.len[s] - img.h_k_done[s] + kv.len[s] - img.h_v_done[s]) * hd * 2;
    }
  img.ring_k = upload(rk, "K window");
  img.ring_v = upload(rv, "V window");
  img.k_table = upload(kcb.gpu_table(), "K decode table");
  img.v_table = upload(vcb.gpu_table(), "V decode table");
  std::vector<int> chunk(kv.n_seqs);
  for (int s = 0; s < kv.n_seqs; ++s) chunk[s] = s;
  img.seq_len = upload(kv.len, "lengths");
  img.k_done = upload(img.h_k_done, "lengths");
  img.v_done = upload(img.h_v_done, "lengths");
  img.chunk_seq = upload(chunk, "lengths");
  img.k_dec.resize(size_t(U) * KV);
  img.v_dec.resize(size_t(U) * KV);
  for (int i = 0; i < U * KV; ++i) {
    img.k_dec[i] = std::move(enc[i].k_dec);
    img.v_dec[i] = std::move(enc[i].v_dec);
    img.k_bytes += enc[i].k_acct;
    img.v_bytes += enc[i].v_acct;
  }
  for (int s = 0; s < kv.n_seqs; ++s)
    for (int h = 0; h < KV; ++h) {
      const Encoded& e = enc[(s % U) * KV + h];
      img.symbols += int64_t(e.k_acct.n_values - e.k_acct.n_raw_values) +
                     int64_t(e.v_acct.n_values - e.v_acct.n_raw_values);
      img.raw_blocks += int(e.k_acct.n_raw_blocks + e.v_acct.n_raw_blocks);
    }
  KvcompAttentionParams& p = img.params;
  p.n_heads = n_heads;
  p.n_kv_heads = KV;
  p.head_dim = hd;
  p.scale = 1.0f / std::sqrt(float(hd));
  p.n_chunks = kv.n_seqs;
  p.chunk_seq = img.chunk_seq.as<int>();
  p.seq_len = img.seq_len.as<int>();
  p.seq_k_done = img.k_done.as<int>();
  p.seq_v_done = img.v_done.as<int>();
  p.ring_k = img.ring_k.as<uint16_t>();
  p.ring_v = img.ring_v.as<uint16_t>();
  p.cap_k = cap_k;
  p.cap_v = cap_v;
  p.k_blocks = img.k_index.as<const uint8_t*>();
  p.v_blocks = img.v_index.as<const uint8_t*>();
  p.max_k_blocks = max_kb;
  p.max_v_blocks = max_vb;
  p.block_k = BK;
  p.block_v = BV;
  p.k_table = img.k_table.as<uint32_t>();
  p.v_table = img.v_table.as<uint32_t>();
  p.k_bits = kcb.max_len();
  p.v_bits = vcb.max_len();
  p.k_fixed_bits = kcb.fixed_bits();
  p.v_fixed_bits = vcb.fixed_bits();
  return img;
}

DenseImage build_dense_image(const HostKv& kv) {
  DenseImage d;
  const int KV = kv.n_kv_heads, hd = kv.head_dim, U = kv.n_unique;
  d.cap = *std::max_element(kv.len.begin(), kv.len.end());
  const size_t head = size_t(d.cap) * hd;
  d.k = DeviceBuffer(size_t(kv.n_seqs) * KV * head * 2, "fp16 K");
  d.v = DeviceBuffer(size_t(kv.n_seqs) * KV * head * 2, "fp16 V");
  d.k.zero();
  d.v.zero();
  // Convert each unique sequence once, then copy it to every sequence that uses it.
  std::vector<uint16_t> k(size_t(KV) * head), v(size_t(KV) * head);
  for (int u = 0; u < U; ++u) {
#pragma omp parallel for
    for (int h = 0; h < KV; ++h) {
      const auto& ks = kv.kh(u, h);
      const auto& vs = kv.vh(u, h);
      for (size_t i = 0; i < size_t(kv.len[u]) * hd; ++i) {
        k[h * head + i] = float_to_fp16(ks[i]);
        v[h * head + i] = float_to_fp16(vs[i]);
      }
    }
    for (int s = u; s < kv.n_seqs; s += U) {
      d.k.upload(k.data(), k.size() * 2, size_t(s) * KV * head * 2);
      d.v.upload(v.data(), v.size() * 2, size_t(s) * KV * head * 2);
    }
  }
  std::vector<int> start(kv.n_seqs), seq(kv.n_seqs);
  for (int s = 0; s < kv.n_seqs; ++s) start[s] = kv.len[s] - 1, seq[s] = s;
  d.chunk_start = upload(start, "lengths");
  d.chunk_seq = upload(seq, "lengths");
  d.args = {d.k.get(), d.v.get(), int64_t(d.cap) * hd, d.cap};
  return d;
}

std::vector<float> reference_attention(const HostKv& kv, int n_heads,
                                       const std::vector<std::vector<float>>& k,
                                       const std::vector<std::vector<float>>& v,
                                       const std::vector<float>& q) {
  const int KV = kv.n_kv_heads, hd = kv.head_dim, G = n_heads / KV;
  std::vector<float> out(size_t(kv.n_seqs) * n_heads * hd);
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int s = 0; s < kv.n_seqs; ++s)
    for (int h = 0; h < n_heads; ++h) {
      const auto& ks = k[(s % kv.n_unique) * KV + h / G];
      const auto& vs = v[(s % kv.n_unique) * KV + h / G];
      const float* qh = q.data() + (size_t(s) * n_heads + h) * hd;
      const int len = kv.len[s];
      std::vector<double> sc(len);
      double mx = -1e300;
      for (int t = 0; t < len; ++t) {
        double d = 0;
        for (int c = 0; c < hd; ++c) d += double(qh[c]) * ks[size_t(t) * hd + c];
        sc[t] = d / std::sqrt(double(hd));
        mx = std::max(mx, sc[t]);
      }
      double sum = 0;
      for (auto& x : sc) sum += (x = std::exp(x - mx));
      std::vector<double> acc(hd, 0.0);
      for (int t = 0; t < len; ++t)
        for (int c = 0; c < hd; ++c) acc[c] += sc[t] * vs[size_t(t) * hd + c];
      for (int c = 0; c < hd; ++c) out[(size_t(s) * n_heads + h) * hd + c] = float(acc[c] / sum);
    }
  return out;
}

}  // namespace kvcomp::testbed
