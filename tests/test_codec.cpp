// KVComp CPU reference codec (compress/quantize.h, compress/codec_ref.h, compress/accounting.h):
// error bounds, the alphabet bound S(eb), raw fallbacks, block round trips over every kind, odd
// token count, head_dim and block size, malformed blocks, byte accounting; compact V parameters
// (kVCompact: the step table and search, the alphabet bound, the fallbacks to kV).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <random>
#include <vector>

#include "compress/codec_ref.h"
#include "runtime/error.h"
#include "runtime/half.h"
#include "tests/catch.h"

using namespace kvcomp;

namespace {

// Requests: kVCompact gives compact V blocks where the data allows them, kV blocks elsewhere.
constexpr BlockKind kKinds[] = {BlockKind::kKBlock, BlockKind::kKChannel, BlockKind::kV,
                                BlockKind::kVCompact};
constexpr float kErrorBounds[] = {0.01f, 0.02f, 0.05f, 0.1f, 0.2f, 0.5f};

const char* kind_str(BlockKind k) {
  return k == BlockKind::kKBlock     ? "K block"
         : k == BlockKind::kKChannel ? "K channel"
         : k == BlockKind::kV        ? "V"
                                     : "V compact";
}

// The default bound of a kind: eb_v for V, eb_k for K.
float eb_of(BlockKind k) {
  return block_kind_is_v(k) ? 0.1f : 0.05f;
}

// A [n_tokens, head_dim] matrix with a row stride (stride > head_dim exercises the stride).
struct Mat {
  int n_tokens = 0, head_dim = 0;
  size_t stride = 0;
  std::vector<float> v;
  float& at(int t, int c) { return v[size_t(t) * stride + size_t(c)]; }
  float at(int t, int c) const { return v[size_t(t) * stride + size_t(c)]; }
};

Mat make_mat(int n_tokens, int head_dim, size_t pad = 3) {
  Mat m;
  m.n_tokens = n_tokens;
  m.head_dim = head_dim;
  m.stride = size_t(head_dim) + pad;
  m.v.assign(size_t(n_tokens) * m.stride, -777.0f);  // padding values must never be read
  return m;
}

// Standard normal values, 1% of them outliers of magnitude 4..12.
Mat gaussian_outliers(int n_tokens, int head_dim, std::mt19937_64& rng) {
  Mat m = make_mat(n_tokens, head_dim);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_real_distribution<float> ud(0.0f, 1.0f);
  for (int t = 0; t < n_tokens; ++t) {
    for (int c = 0; c < head_dim; ++c) {
      float x = nd(rng);
      if (ud(rng) < 0.01f) x = (ud(rng) < 0.5f ? -1.0f : 1.0f) * (4.0f + 8.0f * ud(rng));
      m.at(t, c) = x;
    }
  }
  return m;
}

// All values 100 +- 1: a large common offset.
Mat offset_data(int n_tokens, int head_dim, std::mt19937_64& rng) {
  Mat m = make_mat(n_tokens, head_dim);
  std::uniform_real_distribution<float> ud(-1.0f, 1.0f);
  for (int t = 0; t < n_tokens; ++t) {
    for (int c = 0; c < head_dim; ++c) m.at(t, c) = 100.0f + ud(rng);
  }
  return m;
}

std::vector<float> decode_all(const std::vector<uint8_t>& bytes, size_t off, const Codebook& cb,
                              int n_tokens, int head_dim) {
  std::vector<float> y(size_t(n_tokens) * size_t(head_dim), -999.0f);
  const BlockHeader h =
      decode_block_ref(bytes.data() + off, bytes.size() - off, cb, y.data(), size_t(head_dim));
  REQUIRE(h.n_tokens == n_tokens);
  REQUIRE(h.head_dim == head_dim);
  return y;
}

QuantBlock quantize(BlockKind kind, const Mat& m, float eb, int max_symbol) {
  return quantize_block(kind, m.v.data(), m.n_tokens, m.head_dim, m.stride, eb, max_symbol);
}

Codebook codebook_for(BlockKind kind, const Mat& m, float eb, int max_len = 8) {
  const int alphabet = quant_max_symbol(eb, kind) + 1;
  std::vector<uint64_t> hist(size_t(alphabet), 0);
  histogram_add(quantize(kind, m, eb, alphabet - 1), hist.data(), alphabet);
  return Codebook::from_histogram(hist.data(), alphabet, max_len);
}

// Checks |x - y| against the bound of each quantization group of x and returns the largest
// error relative to eb * range / 2 over non-constant groups. The bound: eb * range / 2 plus fp32
// rounding (2^-22 of the group's largest magnitude); a constant group: fp16 rounding of its value.
double check_error_bound(BlockKind kind, const Mat& x, const std::vector<float>& y, float eb) {
  const int n = x.n_tokens, hd = x.head_dim;
  double worst_excess = -1.0, worst_ratio = 0.0;
  int worst_t = -1, worst_c = -1;
  auto group = [&](auto&& each) {  // each(visit) calls visit(t, c) over one group's members
    double mn = INFINITY, mx = -INFINITY, mag = 0.0;
    each([&](int t, int c) {
      const double v = x.at(t, c);
      mn = std::min(mn, v);
      mx = std::max(mx, v);
      mag = std::max(mag, std::fabs(v));
    });
    const double half = 0.5 * double(eb) * (mx - mn);
    const double tol = mx == mn ? std::ldexp(mag, -11) + std::ldexp(1.0, -25)
                                : half * (1.0 + std::ldexp(1.0, -20)) + std::ldexp(mag, -22);
    each([&](int t, int c) {
      const double err = std::fabs(double(x.at(t, c)) - double(y[size_t(t) * size_t(hd) + c]));
      if (err - tol > worst_excess) {
        worst_excess = err - tol;
        worst_t = t;
        worst_c = c;
      }
      if (mx > mn) worst_ratio = std::max(worst_ratio, err / half);
    });
  };
  switch (kind) {
    case BlockKind::kKBlock:
      group([&](auto&& visit) {
        for (int t = 0; t < n; ++t)
          for (int c = 0; c < hd; ++c) visit(t, c);
      });
      break;
    case BlockKind::kKChannel:
      for (int c = 0; c < hd; ++c) {
        group([&](auto&& visit) {
          for (int t = 0; t < n; ++t) visit(t, c);
        });
      }
      break;
    case BlockKind::kV:
    case BlockKind::kVCompact:
      for (int t = 0; t < n; ++t) {
        group([&](auto&& visit) {
          for (int c = 0; c < hd; ++c) visit(t, c);
        });
      }
      break;
  }
  INFO(kind_str(kind) << " eb " << eb << ": worst excess over the bound " << worst_excess << " at ("
                      << worst_t << ", " << worst_c << ")");
  REQUIRE(worst_excess <= 0.0);
  return worst_ratio;
}

// Every Huffman block property the decoder does not need but the format promises: alignment,
// zero padding and slack, sections where format.h says.
void check_block_layout(const uint8_t* b, size_t bytes) {
  BlockHeader h;
  std::memcpy(&h, b, sizeof h);
  REQUIRE(h.block_bytes == bytes);
  REQUIRE(bytes % kBlockAlign == 0);
  if (h.mode == uint8_t(BlockMode::kRaw)) {
    for (size_t i = sizeof h + h.payload_bytes; i < bytes; ++i) REQUIRE(b[i] == 0);
    return;
  }
  const BlockKind kind = BlockKind(h.kind);
  const uint32_t n_units = block_n_units(kind, h.n_tokens, h.head_dim);
  uint32_t sum = 0;
  for (uint32_t u = 0; u < n_units; ++u) sum += b[block_lengths_offset() + u];
  REQUIRE(sum == h.payload_bytes);
  for (uint32_t i = block_lengths_offset() + n_units;
       i < block_params_offset(kind, h.n_tokens, h.head_dim); ++i) {
    REQUIRE(b[i] == 0);
  }
  const uint32_t payload = block_payload_offset(kind, h.n_tokens, h.head_dim);
  REQUIRE(payload % 4 == 0);
  REQUIRE(bytes - payload - h.payload_bytes >= size_t(kPayloadSlackBytes));
  for (size_t i = payload + h.payload_bytes; i < bytes; ++i) REQUIRE(b[i] == 0);
}

}  // namespace

TEST_CASE("codec: alphabet bound S(eb)", "[codec][quant]") {
  REQUIRE(quant_max_symbol(0.01f) == 101);
  REQUIRE(quant_max_symbol(0.02f) == 51);
  REQUIRE(quant_max_symbol(0.05f) == 21);
  REQUIRE(quant_max_symbol(0.1f) == 11);
  REQUIRE(quant_max_symbol(0.2f) == 6);
  REQUIRE(quant_max_symbol(0.5f) == 3);
  REQUIRE(quant_max_symbol(1.0f) == 2);
  REQUIRE_THROWS_AS(quant_max_symbol(0.001f), Error);
  REQUIRE_THROWS_AS(quant_max_symbol(0.0f), Error);
  REQUIRE_THROWS_AS(quant_max_symbol(NAN), Error);
  // Per requested kind: only compact V differs (its steps may be 2^(1/32) smaller).
  for (float eb : kErrorBounds) {
    REQUIRE(quant_max_symbol(eb, BlockKind::kKBlock) == quant_max_symbol(eb));
    REQUIRE(quant_max_symbol(eb, BlockKind::kKChannel) == quant_max_symbol(eb));
    REQUIRE(quant_max_symbol(eb, BlockKind::kV) == quant_max_symbol(eb));
    REQUIRE(quant_max_symbol(eb, BlockKind::kVCompact) >= quant_max_symbol(eb));
  }
  REQUIRE(quant_max_symbol(0.01f, BlockKind::kVCompact) == 103);
  REQUIRE(quant_max_symbol(0.02f, BlockKind::kVCompact) == 52);
  REQUIRE(quant_max_symbol(0.05f, BlockKind::kVCompact) == 21);
  REQUIRE(quant_max_symbol(0.1f, BlockKind::kVCompact) == 11);
  REQUIRE(quant_max_symbol(0.2f, BlockKind::kVCompact) == 6);
  REQUIRE(quant_max_symbol(0.004f, BlockKind::kVCompact) == 255);  // capped at a byte
  REQUIRE_THROWS_AS(quant_max_symbol(0.001f, BlockKind::kVCompact), Error);

  // Adversarial groups: random offsets and ranges over many magnitudes. Every group with a
  // normal fp16 step stays within S(eb), and S(eb) is reached (the bound is tight).
  std::mt19937_64 rng(0x5EB5EB);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (float eb : kErrorBounds) {
    const int S = quant_max_symbol(eb);
    int seen_max = 0;
    for (int trial = 0; trial < 400000; ++trial) {
      const float range = float(std::exp2(-6.0 + 20.0 * u(rng)));
      const float mn = float((u(rng) - 0.5) * std::exp2(40.0 * u(rng) - 20.0) * range);
      const float mx = mn + range;
      if (!(mx > mn)) continue;
      QuantStep st;
      if (quant_group_step(mn, mx, eb, false, &st) != RawReason::kNone) continue;
      if (st.d < 0x1p-14f) continue;  // subnormal fp16 step: outside the bound's premise
      REQUIRE(quant_symbol(mn, st) == 0);
      const int s = quant_symbol(mx, st);
      INFO("eb " << eb << " mn " << mn << " mx " << mx << " d " << st.d << " m0 " << st.m0);
      REQUIRE(s <= S);
      seen_max = std::max(seen_max, s);
    }
    INFO("eb " << eb);
    REQUIRE(seen_max == S);
  }
}

TEST_CASE("codec: fp16 helpers of the quantizer", "[codec][quant]") {
  // fp16_round_down: the largest fp16 <= t.
  std::mt19937_64 rng(99);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int i = 0; i < 200000; ++i) {
    const float t = float(std::exp2(-30.0 + 50.0 * u(rng)));
    const uint16_t h = fp16_round_down(t);
    REQUIRE(fp16_to_float(h) <= t);
    if (h < 0x7bffu) REQUIRE(fp16_to_float(uint16_t(h + 1)) > t);
  }
  for (uint32_t h = 0; h < 0x7c00u; ++h) REQUIRE(fp16_round_down(fp16_to_float(uint16_t(h))) == h);
  REQUIRE(fp16_round_down(1e9f) == 0x7bffu);
  // fp16_from_float_raw: every fp16 bit pattern survives fp16 -> fp32 -> fp16, NaN payloads too.
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    REQUIRE(fp16_from_float_raw(fp16_to_float(uint16_t(h))) == h);
  }
}

TEST_CASE("codec: error bound for every eb, Gaussian with outliers and large offset",
          "[codec][quant]") {
  std::mt19937_64 rng(20250901);
  for (int dataset = 0; dataset < 2; ++dataset) {
    for (float eb : kErrorBounds) {
      for (BlockKind kind : kKinds) {
        for (int n_tokens : {64, 128}) {
          const Mat x = dataset == 0 ? gaussian_outliers(n_tokens, 128, rng)
                                     : offset_data(n_tokens, 128, rng);
          const int S = quant_max_symbol(eb, kind);
          const QuantBlock q = quantize(kind, x, eb, S);
          INFO((dataset == 0 ? "gaussian+outliers" : "100 +- 1")
               << ", " << kind_str(kind) << ", eb " << eb);
          REQUIRE(!q.raw());
          if (kind == BlockKind::kVCompact) {
            // Gaussian tokens: compact. 100 +- 1: m0 = rint(99 / d) outgrows int8 unless eb is
            // large (d ~ 2 eb: |m0| <= 127 needs eb >= 0.4).
            REQUIRE(q.kind == (dataset == 0 || eb >= 0.5f ? BlockKind::kVCompact : BlockKind::kV));
          } else {
            REQUIRE(q.kind == kind);
          }
          // d <= eb * range of each group.
          for (int t = 0; t < n_tokens; ++t) {
            for (int c = 0; c < 128; ++c) REQUIRE(q.step_of(t, c).d > 0.0f);
          }
          if (kind == BlockKind::kKBlock) {
            float mn = x.at(0, 0), mx = mn;
            for (int t = 0; t < n_tokens; ++t) {
              for (int c = 0; c < 128; ++c) {
                mn = std::min(mn, x.at(t, c));
                mx = std::max(mx, x.at(t, c));
              }
            }
            REQUIRE(double(q.k_step.d) <= double(eb) * (double(mx) - double(mn)));
          }
          // Through the whole codec: encode with this data's codebook, decode to fp32.
          const Codebook cb = codebook_for(kind, x, eb);
          std::vector<uint8_t> bytes;
          const EncodedBlock r =
              encode_block_ref(kind, x.v.data(), n_tokens, 128, x.stride, eb, cb, bytes);
          REQUIRE(r.mode == BlockMode::kHuffman);
          const std::vector<float> y = decode_all(bytes, 0, cb, n_tokens, 128);
          const double ratio = check_error_bound(kind, x, y, eb);
          // The bound is used, not vastly loose: some value lands near half a step away.
          REQUIRE(ratio > 0.9);
          REQUIRE(ratio <= 1.0 + 1e-3);
        }
      }
    }
  }
}

TEST_CASE("codec: constant groups", "[codec][quant]") {
  for (float value : {3.7f, -2.5f, 0.0f, 1e-9f, -65504.0f}) {
    for (BlockKind kind : kKinds) {
      Mat x = make_mat(5, 64);
      for (int t = 0; t < 5; ++t)
        for (int c = 0; c < 64; ++c) x.at(t, c) = value;
      const QuantBlock q = quantize(kind, x, 0.05f, quant_max_symbol(0.05f));
      INFO(kind_str(kind) << " value " << value);
      REQUIRE(!q.raw());
      for (uint8_t s : q.symbols) REQUIRE(s == 0);
      const QuantStep st = q.step_of(0, 0);
      if (round_fp16(std::fabs(value)) == 0.0f) {
        REQUIRE(st.d == 1.0f);
        REQUIRE(st.m0 == 0);
      } else {
        REQUIRE(st.d == round_fp16(std::fabs(value)));
        REQUIRE(st.m0 == (value > 0 ? 1 : -1));
      }
      const uint64_t hist1[22] = {1};
      const Codebook cb = Codebook::from_histogram(hist1, 22, 8);
      std::vector<uint8_t> bytes;
      REQUIRE(encode_block_ref(kind, x.v.data(), 5, 64, x.stride, 0.05f, cb, bytes).mode ==
              BlockMode::kHuffman);
      const std::vector<float> y = decode_all(bytes, 0, cb, 5, 64);
      for (float v : y) REQUIRE(v == round_fp16(value));
    }
  }
  // V: each token constant at its own value (nonzero constants keep the kV form).
  for (BlockKind kind : {BlockKind::kV, BlockKind::kVCompact}) {
    Mat x = make_mat(3, 64);
    const float vals[3] = {0.0f, -7.25f, 1000.0f};
    for (int t = 0; t < 3; ++t)
      for (int c = 0; c < 64; ++c) x.at(t, c) = vals[t];
    const Codebook cb = codebook_for(kind, x, 0.1f);
    std::vector<uint8_t> bytes;
    encode_block_ref(kind, x.v.data(), 3, 64, x.stride, 0.1f, cb, bytes);
    REQUIRE(read_block_header(bytes.data(), bytes.size()).kind == uint8_t(BlockKind::kV));
    const std::vector<float> y = decode_all(bytes, 0, cb, 3, 64);
    for (int t = 0; t < 3; ++t)
      for (int c = 0; c < 64; ++c) REQUIRE(y[size_t(t) * 64 + c] == vals[t]);
  }
  // Zero tokens next to ordinary ones stay compact: (e, m0) = (0, 0), decoded exactly 0.
  Mat z = make_mat(4, 64);
  for (int t = 0; t < 4; ++t)
    for (int c = 0; c < 64; ++c) z.at(t, c) = t % 2 ? 0.0f : float(c % 7) - 3.0f;
  const Codebook cbz = codebook_for(BlockKind::kVCompact, z, 0.1f);
  std::vector<uint8_t> zb;
  encode_block_ref(BlockKind::kVCompact, z.v.data(), 4, 64, z.stride, 0.1f, cbz, zb);
  const QuantBlock zq = decode_block_symbols_ref(zb.data(), zb.size(), cbz);
  REQUIRE(zq.kind == BlockKind::kVCompact);
  REQUIRE(zq.params8[1].e == 0);
  REQUIRE(zq.params8[1].m0 == 0);
  const std::vector<float> zy = decode_all(zb, 0, cbz, 4, 64);
  for (int c = 0; c < 64; ++c) REQUIRE(zy[64 + c] == 0.0f);
  check_error_bound(BlockKind::kVCompact, z, zy, 0.1f);
}

TEST_CASE("codec: NaN/Inf blocks go raw and round-trip exactly", "[codec][raw]") {
  std::mt19937_64 rng(4242);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  const uint16_t specials[] = {0x7e5au, 0xfd01u, 0x7c00u, 0xfc00u, 0x7fffu, 0x8000u};
  for (BlockKind kind : kKinds) {
    for (int n_tokens : {1, 5, 64}) {
      const int hd = 64;
      std::vector<uint16_t> h(size_t(n_tokens) * hd);
      for (auto& v : h) v = float_to_fp16(nd(rng));
      for (size_t i = 0; i < std::size(specials); ++i) h[(i * 37 + 11) % h.size()] = specials[i];
      Mat x = make_mat(n_tokens, hd);
      for (int t = 0; t < n_tokens; ++t)
        for (int c = 0; c < hd; ++c) x.at(t, c) = fp16_to_float(h[size_t(t) * hd + c]);
      const Codebook cb = Codebook::from_histogram(std::vector<uint64_t>(22, 1).data(), 22, 8);
      std::vector<uint8_t> bytes(8, 0xAB);  // blocks may start anywhere 4-aligned in a stream
      const EncodedBlock r =
          encode_block_ref(kind, x.v.data(), n_tokens, hd, x.stride, 0.05f, cb, bytes);
      REQUIRE(r.offset == 8);
      REQUIRE(r.mode == BlockMode::kRaw);
      REQUIRE(r.raw_reason == RawReason::kNonFinite);
      check_block_layout(bytes.data() + 8, r.bytes);
      const QuantBlock q = decode_block_symbols_ref(bytes.data() + 8, bytes.size() - 8, cb);
      REQUIRE(q.raw_reason == RawReason::kNonFinite);
      REQUIRE(q.raw_values == h);
      const std::vector<float> y = decode_all(bytes, 8, cb, n_tokens, hd);
      for (size_t i = 0; i < h.size(); ++i) {
        REQUIRE(float_to_bits(y[i]) == float_to_bits(fp16_to_float(h[i])));
      }
    }
  }
}

TEST_CASE("codec: raw reasons and their precedence", "[codec][raw]") {
  const Codebook cb22 = Codebook::from_histogram(std::vector<uint64_t>(22, 1).data(), 22, 8);
  // A step that cannot reach the values: range 1/64 at magnitude 60000.
  Mat far = make_mat(4, 64);
  for (int t = 0; t < 4; ++t)
    for (int c = 0; c < 64; ++c) far.at(t, c) = 60000.0f + float((t + c) % 2) / 64.0f;
  for (BlockKind kind : kKinds) {
    std::vector<uint8_t> bytes;
    const EncodedBlock r =
        encode_block_ref(kind, far.v.data(), 4, 64, far.stride, 0.05f, cb22, bytes);
    REQUIRE(r.raw_reason == RawReason::kStep);
    const std::vector<float> y = decode_all(bytes, 0, cb22, 4, 64);
    for (int t = 0; t < 4; ++t)
      for (int c = 0; c < 64; ++c) REQUIRE(y[size_t(t) * 64 + c] == round_fp16(far.at(t, c)));
  }
  // m0 beyond int16: V (int16 m0) goes raw, K block-wise (int32 m0) still quantizes.
  // Range 63/16 at 60000, eb 0.1: d ~ 0.39, m0 ~ 152000.
  Mat far_m0 = make_mat(1, 64);
  for (int c = 0; c < 64; ++c) far_m0.at(0, c) = 60000.0f + float(c) * 0.0625f;
  REQUIRE(quantize(BlockKind::kV, far_m0, 0.1f, 11).raw_reason == RawReason::kStep);
  const QuantBlock kq = quantize(BlockKind::kKBlock, far_m0, 0.1f, 11);
  REQUIRE(!kq.raw());
  REQUIRE(kq.k_step.m0 > 32767);
  // Alphabet too small for eb: symbols above the codebook's alphabet.
  std::mt19937_64 rng(7);
  const Mat g = gaussian_outliers(64, 64, rng);
  const Codebook cb4 = Codebook::from_histogram(std::vector<uint64_t>(4, 1).data(), 4, 8);
  for (BlockKind kind : kKinds) {
    std::vector<uint8_t> bytes;
    const EncodedBlock r = encode_block_ref(kind, g.v.data(), 64, 64, g.stride, 0.05f, cb4, bytes);
    REQUIRE(r.raw_reason == RawReason::kSymbols);
  }
  // A compact request whose tokens' symbols exceed the alphabet keeps kV, then goes raw the
  // same way (symbols) as a kV request.
  {
    std::vector<uint8_t> a, b;
    REQUIRE(encode_block_ref(BlockKind::kVCompact, g.v.data(), 64, 64, g.stride, 0.05f, cb4, a)
                .raw_reason == RawReason::kSymbols);
    REQUIRE(read_block_header(a.data(), a.size()).kind == uint8_t(BlockKind::kV));
    encode_block_ref(BlockKind::kV, g.v.data(), 64, 64, g.stride, 0.05f, cb4, b);
    REQUIRE(a == b);
  }
  // Precedence: NaN wins over a step failure and over symbols.
  Mat mix = far;
  mix.at(3, 5) = NAN;
  for (BlockKind kind : kKinds) {
    std::vector<uint8_t> bytes;
    REQUIRE(encode_block_ref(kind, mix.v.data(), 4, 64, mix.stride, 0.05f, cb4, bytes).raw_reason ==
            RawReason::kNonFinite);
  }
  // Step failure in one V token wins over symbols in another.
  Mat two = make_mat(2, 64);
  for (int c = 0; c < 64; ++c) {
    two.at(0, c) = float(c);                         // symbols up to 21: > cb4
    two.at(1, c) = 60000.0f + float(c % 2) / 64.0f;  // step failure
  }
  for (BlockKind kind : {BlockKind::kV, BlockKind::kVCompact}) {
    std::vector<uint8_t> bytes;
    REQUIRE(encode_block_ref(kind, two.v.data(), 2, 64, two.stride, 0.05f, cb4, bytes).raw_reason ==
            RawReason::kStep);
  }
}

TEST_CASE("codec: round trip over kinds, token counts, head_dims, block sizes", "[codec]") {
  std::mt19937_64 rng(0xB10C);
  CodecBytes acct;
  for (BlockKind kind : kKinds) {
    const float eb = eb_of(kind);
    for (int hd : {64, 128}) {
      // The codebook comes from a separate "prefill" sample, as in the cache.
      const Mat prefill = gaussian_outliers(256, hd, rng);
      const Codebook cb = codebook_for(kind, prefill, eb);
      for (int n_tokens : {1, 3, 16, 32, 63, 64, 65, 128, 255, 256}) {
        INFO(kind_str(kind) << " head_dim " << hd << " n_tokens " << n_tokens);
        const Mat x = gaussian_outliers(n_tokens, hd, rng);
        const QuantBlock q = quantize(kind, x, eb, cb.max_symbol());
        REQUIRE(!q.raw());
        std::vector<uint8_t> bytes(4, 0x5A);
        const EncodedBlock r =
            encode_block_ref(kind, x.v.data(), n_tokens, hd, x.stride, eb, cb, bytes, &acct);
        REQUIRE(r.mode == BlockMode::kHuffman);
        REQUIRE(r.offset == 4);
        REQUIRE(r.bytes == bytes.size() - 4);
        check_block_layout(bytes.data() + 4, r.bytes);
        // Serializing the quantized block gives the same bytes.
        std::vector<uint8_t> again;
        REQUIRE(encode_quantized_ref(q, cb, again));
        REQUIRE(std::equal(again.begin(), again.end(), bytes.begin() + 4, bytes.end()));
        // Symbol-exact.
        const QuantBlock d = decode_block_symbols_ref(bytes.data() + 4, r.bytes, cb);
        REQUIRE(q.kind == kind);  // Gaussian tokens: a compact request gives a compact block
        REQUIRE(d.kind == kind);
        REQUIRE(d.symbols == q.symbols);
        REQUIRE(d.k_step.d == q.k_step.d);
        REQUIRE(d.k_step.m0 == q.k_step.m0);
        REQUIRE(d.v_base == q.v_base);
        REQUIRE(d.params.size() == q.params.size());
        for (size_t i = 0; i < q.params.size(); ++i) {
          REQUIRE(d.params[i].d == q.params[i].d);
          REQUIRE(d.params[i].m0 == q.params[i].m0);
        }
        REQUIRE(d.params8.size() == q.params8.size());
        for (size_t i = 0; i < q.params8.size(); ++i) {
          REQUIRE(d.params8[i].e == q.params8[i].e);
          REQUIRE(d.params8[i].m0 == q.params8[i].m0);
        }
        // Values: bit-identical to dequantizing the quantized block, within the bound.
        const std::vector<float> y = decode_all(bytes, 4, cb, n_tokens, hd);
        std::vector<float> y2(y.size());
        dequantize_block(q, y2.data(), size_t(hd));
        for (size_t i = 0; i < y.size(); ++i) REQUIRE(float_to_bits(y[i]) == float_to_bits(y2[i]));
        check_error_bound(kind, x, y, eb);
        // Decoding into a strided output.
        std::vector<float> ys(size_t(n_tokens) * size_t(hd + 7), 123.0f);
        decode_block_ref(bytes.data() + 4, r.bytes, cb, ys.data(), size_t(hd + 7));
        for (int t = 0; t < n_tokens; ++t) {
          for (int c = 0; c < hd; ++c) {
            REQUIRE(ys[size_t(t) * size_t(hd + 7) + c] == y[size_t(t) * hd + c]);
          }
          for (int c = hd; c < hd + 7; ++c) REQUIRE(ys[size_t(t) * size_t(hd + 7) + c] == 123.0f);
        }
      }
    }
  }
  REQUIRE(acct.n_raw_blocks == 0);
}

TEST_CASE("codec: fixed-length codes are the symbols bit-packed MSB-first", "[codec]") {
  // The fixed-length code of each alphabet: ceil(log2(n)) bits for every symbol, code(s) = s.
  for (int n : {1, 2, 3, 4, 5, 12, 22, 52, 104, 202, 256}) {
    const Codebook cb = Codebook::fixed_length(n);
    int bits = 1;
    while ((1 << bits) < n) ++bits;
    INFO("alphabet " << n);
    REQUIRE(cb.fixed_bits() == bits);
    REQUIRE(cb.max_len() == bits);
    for (int sy = 0; sy < n; ++sy) {
      REQUIRE(cb.length(sy) == bits);
      REQUIRE(cb.code(sy) == uint32_t(sy));
    }
  }
  // Huffman codes of skewed data are not fixed-length; uniform counts over 2^b symbols are.
  std::vector<uint64_t> skew = {100, 50, 20, 5, 1, 1};
  REQUIRE(Codebook::from_histogram(skew.data(), 6, 8).fixed_bits() == 0);
  std::vector<uint64_t> flat(8, 7);
  REQUIRE(Codebook::from_histogram(flat.data(), 8, 8).fixed_bits() == 3);
  CodecOptions o;
  o.fixed_codes = true;
  REQUIRE(make_codebook(o, nullptr, o.k_alphabet()).fixed_bits() == 5);  // eb_k 0.05: 22 symbols
  REQUIRE(make_codebook(o, nullptr, o.v_alphabet()).fixed_bits() == 4);  // eb_v 0.1: 12 symbols

  // Blocks: unit u's payload bytes are its symbols packed by hand, B bits each, MSB-first.
  std::mt19937_64 rng(0xF1ED);
  for (BlockKind kind : kKinds) {
    for (float eb : kErrorBounds) {
      for (int hd : {64, 128}) {
        const int n_tokens = 128;
        const Codebook cb = Codebook::fixed_length(quant_max_symbol(eb, kind) + 1);
        const int B = cb.fixed_bits();
        INFO(kind_str(kind) << " eb " << eb << " head_dim " << hd << " bits " << B);
        const Mat x = gaussian_outliers(n_tokens, hd, rng);
        const QuantBlock q = quantize(kind, x, eb, cb.max_symbol());
        REQUIRE(!q.raw());
        std::vector<uint8_t> bytes;
        encode_block_ref(kind, x.v.data(), n_tokens, hd, x.stride, eb, cb, bytes);
        BlockHeader h;
        std::memcpy(&h, bytes.data(), sizeof h);
        REQUIRE(h.mode == uint8_t(BlockMode::kHuffman));
        const BlockKind k = BlockKind(h.kind);
        const uint32_t units = block_n_units(k, n_tokens, hd);
        const uint32_t per = block_unit_symbols(k, n_tokens, hd);
        const uint32_t unit_bytes = (per * uint32_t(B) + 7) / 8;
        REQUIRE(h.payload_bytes == units * unit_bytes);
        const uint8_t* lens = bytes.data() + block_lengths_offset();
        const uint8_t* pay = bytes.data() + block_payload_offset(k, n_tokens, hd);
        for (uint32_t u = 0; u < units; ++u) {
          REQUIRE(lens[u] == unit_bytes);
          std::vector<uint8_t> want(unit_bytes, 0);
          for (uint32_t i = 0; i < per; ++i) {
            const uint32_t sy = block_kind_is_v(k) ? q.symbols[size_t(i) * hd + u]
                                                   : q.symbols[size_t(u) * hd + i];
            for (int b = 0; b < B; ++b) {
              const uint32_t bit = i * uint32_t(B) + uint32_t(b);  // bit b of the code, MSB first
              if ((sy >> (B - 1 - b)) & 1u) want[bit / 8] |= uint8_t(0x80u >> (bit % 8));
            }
          }
          REQUIRE(std::equal(want.begin(), want.end(), pay + size_t(u) * unit_bytes));
        }
        // And it decodes to the same values as the Huffman-coded block of the same symbols.
        const QuantBlock d = decode_block_symbols_ref(bytes.data(), bytes.size(), cb);
        REQUIRE(d.symbols == q.symbols);
      }
    }
  }
}

TEST_CASE("codec: symbols unseen when the codebook was built still round-trip", "[codec]") {
  std::mt19937_64 rng(31337);
  for (BlockKind kind : kKinds) {
    const float eb = 0.05f;
    const int alphabet = quant_max_symbol(eb, kind) + 1;
    std::vector<uint64_t> hist(size_t(alphabet), 0);
    hist[0] = 1000;
    hist[1] = 10;
    for (int max_len : {8, 12}) {
      const Codebook cb = Codebook::from_histogram(hist.data(), alphabet, max_len);
      // A ramp reaches every symbol of the alphabet.
      Mat x = make_mat(16, 64);
      for (int t = 0; t < 16; ++t)
        for (int c = 0; c < 64; ++c) x.at(t, c) = float(t * 64 + c) / 1023.0f;
      const QuantBlock q = quantize(kind, x, eb, cb.max_symbol());
      REQUIRE(!q.raw());
      std::vector<uint8_t> bytes;
      REQUIRE(encode_block_ref(kind, x.v.data(), 16, 64, x.stride, eb, cb, bytes).mode ==
              BlockMode::kHuffman);
      REQUIRE(decode_block_symbols_ref(bytes.data(), bytes.size(), cb).symbols == q.symbols);
      if (kind == BlockKind::kKBlock) {
        REQUIRE(*std::max_element(q.symbols.begin(), q.symbols.end()) >= alphabet - 2);
      }
    }
  }
}

TEST_CASE("codec: a unit longer than 255 bytes falls back to raw", "[codec][raw]") {
  // V, 256 tokens: each token is the ramp 0..1 over its channels, so channel c carries the same
  // symbol in every token; the codebook gives symbol 5 an 11-bit code: 256 x 11 bits > 255 bytes.
  const float eb = 0.1f;
  const int alphabet = quant_max_symbol(eb) + 1;  // 12
  std::vector<uint64_t> hist(static_cast<size_t>(alphabet));
  for (int s = 0; s < alphabet; ++s) {
    const int rank = s == 5 ? alphabet - 1 : (s < 5 ? s : s - 1);
    hist[size_t(s)] = uint64_t(1) << (44 - 3 * rank);
  }
  const Codebook cb = Codebook::from_histogram(hist.data(), alphabet, 12);
  REQUIRE(cb.length(5) >= 11);
  Mat x = make_mat(256, 64);
  for (int t = 0; t < 256; ++t)
    for (int c = 0; c < 64; ++c) x.at(t, c) = float(c) / 63.0f;
  for (BlockKind kind : {BlockKind::kV, BlockKind::kVCompact}) {
    INFO(kind_str(kind));
    const QuantBlock q = quantize(kind, x, eb, cb.max_symbol());
    REQUIRE(!q.raw());
    REQUIRE(q.kind == kind);
    std::vector<uint8_t> none;
    REQUIRE_FALSE(encode_quantized_ref(q, cb, none));
    REQUIRE(none.empty());
    std::vector<uint8_t> bytes;
    const EncodedBlock r = encode_block_ref(kind, x.v.data(), 256, 64, x.stride, eb, cb, bytes);
    REQUIRE(r.mode == BlockMode::kRaw);
    REQUIRE(r.raw_reason == RawReason::kUnitOverflow);
    REQUIRE(read_block_header(bytes.data(), bytes.size()).kind == uint8_t(BlockKind::kV));
    check_block_layout(bytes.data(), r.bytes);
    const std::vector<float> y = decode_all(bytes, 0, cb, 256, 64);
    for (int t = 0; t < 256; ++t)
      for (int c = 0; c < 64; ++c) REQUIRE(y[size_t(t) * 64 + c] == round_fp16(x.at(t, c)));
    // The same block with fewer tokens fits.
    std::vector<uint8_t> small;
    REQUIRE(encode_block_ref(kind, x.v.data(), 128, 64, x.stride, eb, cb, small).mode ==
            BlockMode::kHuffman);
  }
}

TEST_CASE("codec: malformed blocks and the reserved packed mode are rejected", "[codec]") {
  std::mt19937_64 rng(555);
  const Mat x = gaussian_outliers(64, 128, rng);
  for (BlockKind kind : kKinds) {
    const float eb = 0.05f;
    const Codebook cb = codebook_for(kind, x, eb);
    std::vector<uint8_t> good;
    encode_block_ref(kind, x.v.data(), 64, 128, x.stride, eb, cb, good);
    std::vector<float> y(64 * 128);
    auto decode = [&](const std::vector<uint8_t>& b, size_t avail) {
      decode_block_ref(b.data(), avail, cb, y.data(), 128);
    };
    REQUIRE_NOTHROW(decode(good, good.size()));

    std::vector<uint8_t> b = good;
    b[0] = uint8_t(BlockMode::kPacked);
    REQUIRE_THROWS_WITH(decode(b, b.size()), HasSubstr("packed"));
    REQUIRE_THROWS_AS(read_block_header(b.data(), b.size()), Error);
    b[0] = 0;
    REQUIRE_THROWS_WITH(decode(b, b.size()), HasSubstr("unknown mode"));
    b = good;
    b[1] = 9;
    REQUIRE_THROWS_WITH(decode(b, b.size()), HasSubstr("unknown kind"));
    REQUIRE_THROWS_AS(decode(good, good.size() - 1), Error);  // truncated
    REQUIRE_THROWS_AS(decode(good, 10), Error);
    // A unit length moved from one unit to the next: the sum still matches the header.
    b = good;
    b[block_lengths_offset()] += 1;
    b[block_lengths_offset() + 1] -= 1;
    REQUIRE_THROWS_AS(decode(b, b.size()), Error);
    // Lengths that do not sum to payload_bytes.
    b = good;
    b[block_lengths_offset()] += 1;
    REQUIRE_THROWS_WITH(decode(b, b.size()), HasSubstr("sum"));
    // A wrong block size.
    b = good;
    BlockHeader h;
    std::memcpy(&h, b.data(), sizeof h);
    h.block_bytes += 4;
    std::memcpy(b.data(), &h, sizeof h);
    b.resize(b.size() + 4);
    REQUIRE_THROWS_AS(decode(b, b.size()), Error);
    REQUIRE(read_block_header(good.data(), good.size()).kind == uint8_t(kind));
    if (kind == BlockKind::kKBlock || kind == BlockKind::kVCompact) {
      // The header's step (K) or base step (V compact): NaN, 0, not an fp16 value.
      for (float bad : {float(NAN), 0.0f, -1.0f, 1.0f + 0x1p-20f}) {
        b = good;
        std::memcpy(&h, b.data(), sizeof h);
        h.d = bad;
        std::memcpy(b.data(), &h, sizeof h);
        REQUIRE_THROWS_AS(decode(b, b.size()), Error);
      }
    } else {
      b = good;  // first param's step set to fp16 zero
      const uint32_t p = block_params_offset(kind, 64, 128);
      b[p] = 0;
      b[p + 1] = 0;
      REQUIRE_THROWS_AS(decode(b, b.size()), Error);
    }
  }
}

TEST_CASE("codec: corrupted blocks decode or throw Error, never crash", "[codec]") {
  std::mt19937_64 rng(0xF022);
  for (BlockKind kind : kKinds) {
    const float eb = eb_of(kind);
    const Mat x = gaussian_outliers(37, 64, rng);
    const Codebook cb = codebook_for(kind, x, eb);
    std::vector<uint8_t> good;
    encode_block_ref(kind, x.v.data(), 37, 64, x.stride, eb, cb, good);
    Mat nan_x = x;
    nan_x.at(1, 1) = NAN;
    encode_block_ref(kind, nan_x.v.data(), 37, 64, x.stride, eb, cb, good);  // a raw block too
    const size_t second = read_block_header(good.data(), good.size()).block_bytes;
    std::vector<float> y(37 * 64);
    int threw = 0;
    for (int trial = 0; trial < 3000; ++trial) {
      std::vector<uint8_t> b = good;
      const size_t off = trial % 2 ? second : 0;
      const int n_flips = 1 + int(rng() % 3);
      for (int f = 0; f < n_flips; ++f) {
        // Mostly the header and index, where a flip changes the most.
        const size_t span = rng() % 4 ? 64 : b.size() - off;
        b[off + rng() % std::min(span, b.size() - off)] ^= uint8_t(1u << (rng() % 8));
      }
      const size_t avail = rng() % 8 ? b.size() - off : rng() % (b.size() - off + 1);
      try {
        const BlockHeader h = read_block_header(b.data() + off, avail);
        if (size_t(h.n_tokens) * h.head_dim > y.size()) y.resize(size_t(h.n_tokens) * h.head_dim);
        decode_block_ref(b.data() + off, avail, cb, y.data(), h.head_dim);
      } catch (const Error&) {
        ++threw;
      }
    }
    REQUIRE(threw > 0);
  }
}

TEST_CASE("codec: options", "[codec]") {
  CodecOptions o;
  REQUIRE_NOTHROW(validate_codec_options(o));
  REQUIRE(o.k_alphabet() == 22);
  REQUIRE(o.v_alphabet() == 12);
  REQUIRE(o.k_kind() == BlockKind::kKBlock);
  REQUIRE(o.v_kind() == BlockKind::kVCompact);
  o.eb_v = 0.02f;
  REQUIRE(o.v_alphabet() == 53);  // S(0.02) = 51, 52 for compact V
  o.v_params16 = false;
  REQUIRE(o.v_kind() == BlockKind::kV);
  REQUIRE(o.v_alphabet() == 52);
  o = CodecOptions{};
  o.k_channelwise = true;
  REQUIRE(o.k_kind() == BlockKind::kKChannel);
  for (int b : {16, 32, 64, 128, 256}) {
    o.block_k = b;
    o.block_v = b;
    REQUIRE_NOTHROW(validate_codec_options(o));
  }
  o = CodecOptions{};
  o.block_k = 48;
  REQUIRE_THROWS_WITH(validate_codec_options(o), HasSubstr("block_k"));
  o = CodecOptions{};
  o.block_v = 512;
  REQUIRE_THROWS_WITH(validate_codec_options(o), HasSubstr("block_v"));
  o = CodecOptions{};
  o.max_code_len = 13;
  REQUIRE_THROWS_WITH(validate_codec_options(o), HasSubstr("max_code_len"));
  o = CodecOptions{};
  o.eb_v = -1.0f;
  REQUIRE_THROWS_WITH(validate_codec_options(o), HasSubstr("eb_v"));
  o = CodecOptions{};
  o.eb_k = 0.001f;
  REQUIRE_THROWS_AS(validate_codec_options(o), Error);
  // Bad encoder arguments.
  const Codebook cb = Codebook::from_histogram(std::vector<uint64_t>(22, 1).data(), 22, 8);
  std::vector<float> x(64, 0.5f);
  std::vector<uint8_t> out;
  REQUIRE_THROWS_AS(encode_block_ref(BlockKind::kV, x.data(), 0, 64, 64, 0.05f, cb, out), Error);
  REQUIRE_THROWS_AS(encode_block_ref(BlockKind::kV, x.data(), 1, 64, 32, 0.05f, cb, out), Error);
  REQUIRE_THROWS_AS(encode_block_ref(BlockKind(7), x.data(), 1, 64, 64, 0.05f, cb, out), Error);
  REQUIRE(out.empty());
}

TEST_CASE("codec: byte accounting sums to the encoded bytes", "[codec][accounting]") {
  std::mt19937_64 rng(8080);
  const int hd = 128;
  CodecBytes acct;
  std::vector<uint8_t> stream;
  size_t expect_values = 0, expect_raw = 0, expect_blocks = 0;
  std::vector<uint64_t> expect_hist(kMaxAlphabet, 0);
  for (BlockKind kind : kKinds) {
    const float eb = eb_of(kind);
    const Mat prefill = gaussian_outliers(128, hd, rng);
    const Codebook cb = codebook_for(kind, prefill, eb);
    acct.add_codebook(cb);
    for (int n_tokens : {64, 64, 17, 1, 128}) {
      Mat x = gaussian_outliers(n_tokens, hd, rng);
      if (n_tokens == 17) x.at(3, 3) = INFINITY;
      const QuantBlock q = quantize(kind, x, eb, cb.max_symbol());
      histogram_add(q, expect_hist.data(), kMaxAlphabet);
      encode_block_ref(kind, x.v.data(), n_tokens, hd, x.stride, eb, cb, stream, &acct);
      expect_values += size_t(n_tokens) * hd;
      expect_raw += q.raw() ? 1 : 0;
      ++expect_blocks;
    }
  }
  REQUIRE(acct.block_bytes() == stream.size());
  REQUIRE(acct.total_bytes() == stream.size() + 22 + 22 + 12 + 12);
  REQUIRE(acct.codebooks == 68);
  REQUIRE(acct.n_values == expect_values);
  REQUIRE(acct.n_blocks == expect_blocks);
  REQUIRE(acct.n_raw_blocks == expect_raw);
  REQUIRE(expect_raw == std::size(kKinds));  // the block with an Inf, per kind
  REQUIRE(acct.n_compact_blocks == 4);       // the other compact-requested blocks
  for (int s = 0; s < kMaxAlphabet; ++s) REQUIRE(acct.hist[s] == expect_hist[size_t(s)]);
  // Walk the stream block by block and recount each part.
  CodecBytes walk;
  uint64_t headers = 0, lengths = 0, params = 0, payload = 0, raw = 0;
  size_t off = 0;
  while (off < stream.size()) {
    const BlockHeader h = read_block_header(stream.data() + off, stream.size() - off);
    walk.add_block(stream.data() + off, stream.size() - off);
    headers += sizeof(BlockHeader);
    if (h.mode == uint8_t(BlockMode::kRaw)) {
      raw += 2u * h.n_tokens * h.head_dim;
    } else {
      const BlockKind k = BlockKind(h.kind);
      lengths += block_n_units(k, h.n_tokens, h.head_dim);
      params += block_param_bytes(k) * block_n_params(k, h.n_tokens, h.head_dim);
      REQUIRE(block_params_bytes(k, h.n_tokens, h.head_dim) ==
              (k == BlockKind::kVCompact ? 2u : 4u) * block_n_params(k, h.n_tokens, h.head_dim));
      payload += h.payload_bytes;
    }
    off += h.block_bytes;
  }
  REQUIRE(off == stream.size());
  REQUIRE(walk.headers == headers);
  REQUIRE(walk.unit_lengths == lengths);
  REQUIRE(walk.params == params);
  REQUIRE(walk.n_compact_blocks == acct.n_compact_blocks);
  REQUIRE(walk.payload == payload);
  REQUIRE(walk.raw == raw);
  REQUIRE(walk.block_bytes() == stream.size());
  REQUIRE(acct.headers == headers);
  REQUIRE(acct.payload == payload);
  REQUIRE(acct.bits_per_value() == Approx(8.0 * double(acct.total_bytes()) / expect_values));
  REQUIRE(acct.ratio_to_fp16() == Approx(2.0 * expect_values / double(acct.total_bytes())));
  CodecBytes sum;
  sum += walk;
  sum += walk;
  REQUIRE(sum.block_bytes() == 2 * stream.size());
}

TEST_CASE("codec: bits per value on Gaussian data with outliers (report)", "[codec][report]") {
  // One layer, 8 KV heads, 1024 prefill tokens, head_dim 128; one codebook per (layer, K|V)
  // built from the layer's own blocks; defaults: eb_k 0.05 / B_K 64, eb_v 0.1 / B_V 128.
  std::mt19937_64 rng(123456789);
  const CodecOptions opt;
  const int n_heads = 8, n_tokens = 1024, hd = 128;
  std::vector<Mat> k, v;
  for (int h = 0; h < n_heads; ++h) {
    k.push_back(gaussian_outliers(n_tokens, hd, rng));
    v.push_back(gaussian_outliers(n_tokens, hd, rng));
  }
  auto run = [&](BlockKind kind, const std::vector<Mat>& data, float eb, int block) {
    const int alphabet = quant_max_symbol(eb, kind) + 1;
    std::vector<uint64_t> hist(size_t(alphabet), 0);
    for (const Mat& m : data) {
      for (int t0 = 0; t0 < n_tokens; t0 += block) {
        const QuantBlock q = quantize_block(kind, m.v.data() + size_t(t0) * m.stride, block, hd,
                                            m.stride, eb, alphabet - 1);
        histogram_add(q, hist.data(), alphabet);
      }
    }
    const Codebook cb = Codebook::from_histogram(hist.data(), alphabet, opt.max_code_len);
    CodecBytes acct;
    acct.add_codebook(cb);
    std::vector<uint8_t> bytes;
    for (const Mat& m : data) {
      for (int t0 = 0; t0 < n_tokens; t0 += block) {
        encode_block_ref(kind, m.v.data() + size_t(t0) * m.stride, block, hd, m.stride, eb, cb,
                         bytes, &acct);
      }
    }
    REQUIRE(acct.block_bytes() == bytes.size());
    REQUIRE(acct.n_raw_blocks == 0);
    const double n = double(acct.n_values);
    std::printf(
        "%-10s eb %.2f B %3d: %.3f bits/value (ratio %.2fx fp16) = payload %.3f + index %.3f + "
        "params %.3f + headers %.3f + padding %.3f + codebook %.4f; entropy %.3f bits/symbol, "
        "Huffman payload %.3f bits/value\n",
        kind_str(kind), double(eb), block, acct.bits_per_value(), acct.ratio_to_fp16(),
        8.0 * double(acct.payload) / n, 8.0 * double(acct.unit_lengths) / n,
        8.0 * double(acct.params) / n, 8.0 * double(acct.headers) / n,
        8.0 * double(acct.padding) / n, 8.0 * double(acct.codebooks) / n,
        acct.entropy_bits_per_symbol(), acct.payload_bits_per_coded_value());
    // Huffman cannot beat the entropy; its loss here (code + unit byte padding) stays small.
    REQUIRE(acct.payload_bits_per_coded_value() >= acct.entropy_bits_per_symbol());
    REQUIRE(acct.payload_bits_per_coded_value() < acct.entropy_bits_per_symbol() + 0.5);
    return acct;
  };
  run(BlockKind::kKBlock, k, opt.eb_k, opt.block_k);
  run(BlockKind::kKChannel, k, opt.eb_k, opt.block_k);
  const CodecBytes wide = run(BlockKind::kV, v, opt.eb_v, opt.block_v);
  const CodecBytes compact = run(BlockKind::kVCompact, v, opt.eb_v, opt.block_v);
  // Compact V params: 16 instead of 32 bits per token (0.125 bits per value at head_dim 128),
  // every block compact; the smaller steps cost a little payload, less than the params save.
  REQUIRE(compact.n_compact_blocks == compact.n_blocks);
  REQUIRE(8.0 * double(compact.params) / double(compact.n_values) == Approx(0.125));
  REQUIRE(compact.bits_per_value() < wide.bits_per_value() - 0.08);
}

TEST_CASE("codec: compact V steps: the table, the step function, the code search",
          "[codec][compact]") {
  // Each table entry is the fp32 value nearest to 2^(-j/32) (exp2 in double is far more precise
  // than half an fp32 ulp).
  for (int j = 0; j < 32; ++j) {
    const double exact = std::exp2(-double(j) / 32.0);
    const float f = kVStepTable.frac[j];
    const double half_ulp = 0.5 * double(std::nextafter(f, 2.0f) - f);
    INFO("j " << j);
    REQUIRE(std::fabs(double(f) - exact) <= half_ulp);
  }
  // v_compact_step: b * 2^(-e/32) within two fp32 roundings, strictly decreasing in e, exact
  // octaves, normal for every fp16 base.
  std::mt19937_64 rng(0xC0DE);
  std::vector<float> bases = {0x1p-24f, 0x1p-14f, 1.0f, 65504.0f, fp16_to_float(0x3c01u)};
  for (int i = 0; i < 200; ++i) bases.push_back(fp16_to_float(uint16_t(1 + rng() % 0x7bffu)));
  for (float b : bases) {
    float prev = INFINITY;
    for (uint32_t e = 0; e <= kVCompactMaxCode; ++e) {
      const float d = v_compact_step(b, e, kVStepTable);
      INFO("b " << b << " e " << e);
      REQUIRE(d < prev);
      REQUIRE(std::isnormal(d));
      const double exact = double(b) * std::exp2(-double(e) / 32.0);
      REQUIRE(std::fabs(double(d) / exact - 1.0) <= 0x1p-23);
      if (e % 32 == 0) REQUIRE(d == std::ldexp(b, -int(e / 32)));
      prev = d;
    }
  }
  // v_compact_code: the smallest e with step <= d.
  for (int i = 0; i < 20000; ++i) {
    const float b = bases[size_t(rng() % bases.size())];
    const float d = float(double(b) * std::exp2(-9.0 * double(rng() % 100000) / 100000.0));
    const uint32_t e = v_compact_code(b, d, kVStepTable);
    INFO("b " << b << " d " << d << " e " << e);
    if (e <= kVCompactMaxCode) {
      REQUIRE(v_compact_step(b, e, kVStepTable) <= d);
      if (e > 0) REQUIRE(v_compact_step(b, e - 1, kVStepTable) > d);
    } else {
      REQUIRE(e == kVCompactMaxCode + 1);
      REQUIRE(v_compact_step(b, kVCompactMaxCode, kVStepTable) > d);
    }
  }
  REQUIRE(v_compact_code(1.0f, 1.0f, kVStepTable) == 0);
  REQUIRE(v_compact_code(1.0f, 0.5f, kVStepTable) == 32);
  REQUIRE(v_compact_code(1.0f, 0x1p-8f, kVStepTable) == 256);  // 2^-8 is code 256: too far
  REQUIRE(v_compact_code(1.0f, 0x1.06p-8f, kVStepTable) == 255);
  // fp16_finite_value: the exact value of every finite fp16.
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    if ((h & 0x7c00u) == 0x7c00u) continue;
    REQUIRE(float_to_bits(fp16_finite_value(uint16_t(h))) ==
            float_to_bits(fp16_to_float(uint16_t(h))));
  }
}

TEST_CASE("codec: compact V symbols stay within quant_max_symbol(eb, kVCompact)",
          "[codec][compact]") {
  // Adversarial tokens: random offsets and ranges over many magnitudes, each under a random base
  // step up to 8 octaves above its own kV step. The compact symbols never exceed the compact
  // alphabet bound, and they come close to it.
  std::mt19937_64 rng(0x5EB5EC);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (float eb : kErrorBounds) {
    const int S = quant_max_symbol(eb, BlockKind::kVCompact);
    int seen_max = 0;
    for (int trial = 0; trial < 200000; ++trial) {
      const float range = float(std::exp2(-6.0 + 20.0 * u(rng)));
      const float mn = float((u(rng) - 0.5) * std::exp2(14.0 * u(rng) - 7.0) * range);
      const float mx = mn + range;
      if (!(mx > mn)) continue;
      QuantStep st;
      if (quant_group_step(mn, mx, eb, true, &st) != RawReason::kNone) continue;
      if (st.d < 0x1p-14f) continue;  // subnormal fp16 step: outside the bound's premise
      const float b = fp16_to_float(fp16_round_down(float(st.d * std::exp2(8.0 * u(rng)))));
      if (!(b >= st.d)) continue;
      const uint32_t e = v_compact_code(b, st.d, kVStepTable);
      if (e > kVCompactMaxCode) continue;
      const float d = v_compact_step(b, e, kVStepTable);
      REQUIRE(d <= st.d);
      const int32_t m0 = int32_t(rintf(mn / d));
      const int s = int32_t(rintf(mx / d)) - m0;
      INFO("eb " << eb << " mn " << mn << " mx " << mx << " b " << b << " e " << e);
      REQUIRE(int32_t(rintf(mn / d)) - m0 == 0);
      REQUIRE(s <= S);
      seen_max = std::max(seen_max, s);
    }
    INFO("eb " << eb);
    REQUIRE(seen_max >= S - 1);
  }
}

TEST_CASE("codec: compact V blocks round-trip, and fall back to 32-bit params when they must",
          "[codec][compact]") {
  std::mt19937_64 rng(0xFA11);
  const int hd = 64;
  // Encodes x with a compact request and eb, checks the kind written, the round trip against
  // the quantized block, the error bound, and the size against a kV request.
  auto check = [&](const Mat& x, float eb, BlockKind want) {
    const int n = x.n_tokens;
    const Codebook cb = codebook_for(BlockKind::kVCompact, x, eb, 12);
    const QuantBlock q = quantize(BlockKind::kVCompact, x, eb, cb.max_symbol());
    REQUIRE(!q.raw());
    REQUIRE(q.kind == want);
    std::vector<uint8_t> bytes;
    const EncodedBlock r =
        encode_block_ref(BlockKind::kVCompact, x.v.data(), n, hd, x.stride, eb, cb, bytes);
    REQUIRE(r.mode == BlockMode::kHuffman);
    check_block_layout(bytes.data(), r.bytes);
    const BlockHeader h = read_block_header(bytes.data(), bytes.size());
    REQUIRE(h.kind == uint8_t(want));
    const QuantBlock d = decode_block_symbols_ref(bytes.data(), bytes.size(), cb);
    REQUIRE(d.kind == want);
    REQUIRE(d.symbols == q.symbols);
    const std::vector<float> y = decode_all(bytes, 0, cb, n, hd);
    std::vector<float> y2(y.size());
    dequantize_block(q, y2.data(), size_t(hd));
    for (size_t i = 0; i < y.size(); ++i) REQUIRE(float_to_bits(y[i]) == float_to_bits(y2[i]));
    check_error_bound(BlockKind::kVCompact, x, y, eb);
    // Every token's step is the one format.h's helper reads from the bytes.
    for (int t = 0; t < n; ++t) {
      const GroupParams p = v_token_params(h, bytes.data(), uint32_t(t), kVStepTable);
      REQUIRE(p.d == q.step_of(t, 0).d);
      REQUIRE(p.m0 == q.step_of(t, 0).m0);
    }
    // Against a kV request: the same values where the block fell back; else 2 bytes per token
    // fewer params (the section rounded to 4 bytes), and never a larger symbol than allowed.
    std::vector<uint8_t> wide;
    encode_block_ref(BlockKind::kV, x.v.data(), n, hd, x.stride, eb, cb, wide);
    if (want == BlockKind::kV) {
      REQUIRE(wide == bytes);
    } else {
      REQUIRE(block_payload_offset(BlockKind::kV, uint32_t(n), uint32_t(hd)) -
                  block_payload_offset(BlockKind::kVCompact, uint32_t(n), uint32_t(hd)) ==
              4u * uint32_t(n) - round_up4(2u * uint32_t(n)));
      // The base is the largest token step: that token has code 0.
      uint32_t min_e = kVCompactMaxCode;
      for (const QuantParams8& p : q.params8) min_e = std::min<uint32_t>(min_e, p.e);
      REQUIRE(min_e == 0);
      REQUIRE(h.d == q.v_base);
    }
  };

  for (int n : {1, 2, 3, 17, 64, 128}) {
    INFO("tokens " << n);
    // Compact: token scales spread over 5.5 octaves (outliers add up to 2 more; e <= 255).
    Mat a = gaussian_outliers(n, hd, rng);
    for (int t = 0; t < n; ++t)
      for (int c = 0; c < hd; ++c) a.at(t, c) *= float(std::exp2(-5.5 * double(t % 5) / 4.0));
    for (float eb : kErrorBounds) check(a, eb, BlockKind::kVCompact);
    if (n < 2) continue;
    // e > 255: one token's range 2^-9 of another's (the GQA-sink-like near-silent token).
    Mat b = gaussian_outliers(n, hd, rng);
    for (int c = 0; c < hd; ++c) b.at(n - 1, c) *= 0x1p-9f;
    for (float eb : kErrorBounds) check(b, eb, BlockKind::kV);
    // m0 beyond int8: values in [100, 101] at eb 0.1 (d ~ 0.1, m0 ~ 1000) in one token.
    Mat m = gaussian_outliers(n, hd, rng);
    for (int c = 0; c < hd; ++c) m.at(0, c) = 100.0f + float(c) / float(hd - 1);
    check(m, 0.1f, BlockKind::kV);
    // A nonzero constant token.
    Mat k = gaussian_outliers(n, hd, rng);
    for (int c = 0; c < hd; ++c) k.at(n / 2, c) = -1.25f;
    check(k, 0.1f, BlockKind::kV);
  }
  // Symbols beyond the alphabet under the compact steps (a codebook built for S(eb), not the
  // compact S): the block keeps kV and stays Huffman-coded. Search two-token blocks (a base token
  // of range 1, a second token 1..2.2% narrower at a random offset) for one whose compact
  // symbols reach above S(eb).
  const float eb = 0.02f;
  const int S = quant_max_symbol(eb), Sc = quant_max_symbol(eb, BlockKind::kVCompact);
  REQUIRE(Sc > S);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  bool found = false;
  for (int trial = 0; trial < 20000 && !found; ++trial) {
    Mat r = make_mat(2, hd);
    const float w = 1.0f - 0.022f * u(rng), off = 4.0f * u(rng) - 2.0f;
    for (int c = 0; c < hd; ++c) {
      r.at(0, c) = float(c) / float(hd - 1);
      r.at(1, c) = off + w * float(c) / float(hd - 1);
    }
    const QuantBlock qc = quantize(BlockKind::kVCompact, r, eb, Sc);
    if (qc.raw() || qc.kind != BlockKind::kVCompact) continue;
    if (*std::max_element(qc.symbols.begin(), qc.symbols.end()) <= S) continue;
    found = true;
    const QuantBlock qs = quantize(BlockKind::kVCompact, r, eb, S);
    const QuantBlock qw = quantize(BlockKind::kV, r, eb, S);
    REQUIRE(!qw.raw());
    REQUIRE(!qs.raw());
    REQUIRE(qs.kind == BlockKind::kV);
    REQUIRE(qs.symbols == qw.symbols);
    std::vector<uint64_t> flat(size_t(S) + 1, 1);
    const Codebook cbs = Codebook::from_histogram(flat.data(), S + 1, 12);
    std::vector<uint8_t> bytes;
    REQUIRE(
        encode_block_ref(BlockKind::kVCompact, r.v.data(), 2, hd, r.stride, eb, cbs, bytes).mode ==
        BlockMode::kHuffman);
    REQUIRE(read_block_header(bytes.data(), bytes.size()).kind == uint8_t(BlockKind::kV));
  }
  REQUIRE(found);
}
