// The fixed-bit baselines (compress/fixedbit.h, compress/kv_cache_fixedbit_ref.h): e4m3
// conversion on every code and every tie, the quantizers' error bounds and round trips, the byte
// accounting, the cache against an expectation built from the quantizers alone, and perplexity
// of the demo model with each baseline.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "compress/fixedbit.h"
#include "compress/kv_cache_fixedbit_ref.h"
#include "models/llama_cpu.h"
#include "models/model_files.h"
#include "models/perplexity.h"
#include "runtime/half.h"
#include "runtime/ops_ref.h"
#include "runtime/tokenizer.h"
#include "tests/catch.h"
#include "tests/demo_text.h"

using namespace kvcomp;

namespace {

// |x - x'| <= s/2 plus the fp32 rounding of q*s + z (2^-24 relative) and the fp16 rounding of
// x' (half an fp16 ulp of x', at most 2^-11 of |x'| or 2^-25 below the normal range).
double affine_slack(double x_prime) {
  return std::ldexp(std::fabs(x_prime), -11) + std::ldexp(1.0, -25) +
         std::ldexp(std::fabs(x_prime), -23);
}
// int8 within 0.5% of fp16 perplexity on the demo model (the expectation).
constexpr double kTolPplInt8 = 0.005;
// fp8 e4m3 (3 mantissa bits) on the demo model: within 2%.
constexpr double kTolPplFp8 = 0.02;

const KvMode kModes[] = {KvMode::kKivi2, KvMode::kKivi4, KvMode::kInt8, KvMode::kFp8};

// Nearest e4m3 code by search over the finite codes, ties to the even code.
uint8_t e4m3_nearest(float x) {
  if (std::isnan(x)) return std::signbit(x) ? 0xff : 0x7f;
  const uint8_t sign = std::signbit(x) ? 0x80 : 0;
  const double a = std::fabs(double(x));
  if (a >= 448) return sign | 0x7e;
  int best = 0;
  double best_d = INFINITY;
  for (int c = 0; c <= 0x7e; ++c) {
    const double d = std::fabs(double(e4m3_to_float(uint8_t(c))) - a);
    if (d < best_d || (d == best_d && (c & 1) == 0)) best = c, best_d = d;
  }
  return uint8_t(sign | best);
}

// K-like rows (per-channel offsets and scales, a few outlier channels) and V-like rows.
void fill_kv(std::mt19937_64& rng, int n, int row, std::vector<float>& k, std::vector<float>& v) {
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  k.resize(size_t(n) * row);
  v.resize(size_t(n) * row);
  for (int t = 0; t < n; ++t)
    for (int c = 0; c < row; ++c) {
      const float scale = c % 17 == 3 ? 12.0f : 0.5f + 0.1f * float(c % 7);
      k[size_t(t) * row + c] = 0.3f * float(c % 5) - 0.6f + scale * g(rng);
      v[size_t(t) * row + c] = g(rng) * (u(rng) < 0.01f ? 10.0f : 1.0f);
    }
}

}  // namespace

TEST_CASE("e4m3: every code round-trips, ties go to even, out of range saturates") {
  int finite = 0;
  for (int c = 0; c < 256; ++c) {
    const float x = e4m3_to_float(uint8_t(c));
    if ((c & 0x7f) == 0x7f) {
      REQUIRE(std::isnan(x));
      REQUIRE(float_to_e4m3(x) == uint8_t(c));  // the sign of a NaN is kept
      continue;
    }
    ++finite;
    REQUIRE(std::isfinite(x));
    REQUIRE(float_to_e4m3(x) == uint8_t(c));
    REQUIRE(bool(std::signbit(x)) == bool(c & 0x80));
  }
  REQUIRE(finite == 254);
  REQUIRE(e4m3_to_float(0x7e) == 448.0f);
  REQUIRE(e4m3_to_float(0x01) == std::ldexp(1.0f, -9));
  REQUIRE(e4m3_to_float(0x08) == std::ldexp(1.0f, -6));
  // Midpoints between neighbouring codes (exact in fp32) round to the even code; a hair off
  // the midpoint rounds to the nearer one.
  for (int c = 0; c < 0x7e; ++c) {
    const float lo = e4m3_to_float(uint8_t(c)), hi = e4m3_to_float(uint8_t(c + 1));
    const float mid = 0.5f * (lo + hi);
    REQUIRE(double(mid) == 0.5 * (double(lo) + double(hi)));
    const uint8_t even = (c & 1) == 0 ? uint8_t(c) : uint8_t(c + 1);
    REQUIRE(float_to_e4m3(mid) == even);
    REQUIRE(float_to_e4m3(-mid) == (even | 0x80));
    REQUIRE(float_to_e4m3(std::nextafter(mid, 0.0f)) == uint8_t(c));
    REQUIRE(float_to_e4m3(std::nextafter(mid, 1e9f)) == uint8_t(c + 1));
  }
  for (float x : {448.0f, 449.0f, 464.0f, 480.0f, 1e6f, 3e38f, INFINITY})
    REQUIRE(float_to_e4m3(x) == 0x7e);
  REQUIRE(float_to_e4m3(-INFINITY) == 0xfe);
  REQUIRE(float_to_e4m3(NAN) == 0x7f);
  REQUIRE(float_to_e4m3(0.0f) == 0x00);
  REQUIRE(float_to_e4m3(-0.0f) == 0x80);
  REQUIRE(float_to_e4m3(std::ldexp(1.0f, -11)) == 0x00);  // a quarter of the smallest: 0
  REQUIRE(float_to_e4m3(std::ldexp(1.0f, -10)) == 0x00);  // half of it: tie to even (0)
  REQUIRE(float_to_e4m3(std::ldexp(3.0f, -11)) == 0x01);
  REQUIRE(float_to_e4m3(1e-40f) == 0x00);  // an fp32 subnormal
  // Against a search over the table, on values spread over every binade (fp32 subnormals too).
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<float> mant(1.0f, 2.0f);
  std::uniform_int_distribution<int> expo(-140, 10);
  for (int i = 0; i < 200000; ++i) {
    float x = std::ldexp(mant(rng), expo(rng));
    if (i & 1) x = -x;
    INFO("x = " << x);
    REQUIRE(float_to_e4m3(x) == e4m3_nearest(x));
  }
}

TEST_CASE("asymmetric b-bit quantization: codes in range, |x - x'| <= s/2") {
  std::mt19937_64 rng(5);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::uniform_real_distribution<float> u(-3.0f, 3.0f);
  for (int bits : {2, 4, 8}) {
    double worst = 0;
    for (int trial = 0; trial < 3000; ++trial) {
      const int n = 1 + trial % 70;
      const float scale = std::ldexp(1.0f, trial % 25 - 15);
      const float offset = trial % 3 == 0 ? 0.0f : u(rng) * scale * 4;
      std::vector<float> x(n);
      for (float& e : x) e = round_fp16(offset + scale * g(rng));
      if (trial % 50 == 7) std::fill(x.begin(), x.end(), x[0]);  // constant group
      const float mn = *std::min_element(x.begin(), x.end());
      const float mx = *std::max_element(x.begin(), x.end());
      const AffineParams p = affine_params(mn, mx, bits);
      const float s = fp16_to_float(p.scale), z = fp16_to_float(p.zero);
      REQUIRE(z == mn);  // fp16 inputs: the zero point is exact
      // s: the smallest fp16 >= the fp32 step.
      const float step = (mx - mn) / float((1 << bits) - 1);
      REQUIRE(s >= step);
      if (p.scale > 0) REQUIRE(fp16_to_float(uint16_t(p.scale - 1)) < step);
      for (float e : x) {
        const uint32_t q = affine_code(e, s, z, bits);
        REQUIRE(q < (1u << bits));
        const float back = affine_value(q, s, z);
        REQUIRE(back == round_fp16(back));
        const double err = std::fabs(double(e) - double(back));
        const double bound = 0.5 * double(s) * (1 + 1e-6) + affine_slack(back);
        REQUIRE(err <= bound);
        worst = std::max(worst, err / bound);
      }
    }
    std::printf("%d-bit affine: worst |x - x'| / (s/2 + fp16 rounding) = %.4f\n", bits, worst);
  }
}

TEST_CASE("fixed-bit blocks: round trip, error bounds and layout per scheme") {
  std::mt19937_64 rng(9);
  for (int hd : {64, 128}) {
    const int n = 64, row = 3 * hd;  // a block inside rows of 3 heads
    std::vector<float> k, v;
    fill_kv(rng, n, row, k, v);
    for (float& x : k) x = round_fp16(x);
    for (float& x : v) x = round_fp16(x);
    const float* kx = k.data() + hd;  // head 1
    const float* vx = v.data() + hd;
    struct Case {
      FixedBitFormat f;
      const float* x;
    };
    const Case cases[] = {
        {{FixedBitScheme::kChannelBlock, 2, 0}, kx}, {{FixedBitScheme::kChannelBlock, 4, 0}, kx},
        {{FixedBitScheme::kTokenGroups, 2, 32}, vx}, {{FixedBitScheme::kTokenGroups, 4, hd}, vx},
        {{FixedBitScheme::kTokenGroups, 8, hd}, kx}, {{FixedBitScheme::kFp8Block, 8, 0}, kx},
        {{FixedBitScheme::kFp8Block, 8, 0}, vx}};
    for (const Case& c : cases) {
      const FixedBitFormat& f = c.f;
      INFO("head_dim " << hd << ": " << f.describe(n, hd));
      std::vector<uint8_t> blk(size_t(f.block_bytes(n, hd)));
      fixedbit_quantize_ref(f, c.x, n, hd, row, blk.data());
      std::vector<float> out(size_t(n) * hd);
      fixedbit_dequantize_ref(f, blk.data(), n, hd, out.data(), hd);
      auto param = [&](int64_t i) {
        return fp16_to_float(uint16_t(blk[2 * i] | (blk[2 * i + 1] << 8)));
      };
      const uint8_t* codes = blk.data() + f.param_bytes(n, hd);
      double worst = 0;
      for (int t = 0; t < n; ++t)
        for (int ch = 0; ch < hd; ++ch) {
          const float x = c.x[int64_t(t) * row + ch], y = out[size_t(t) * hd + ch];
          const uint32_t q = fixedbit_code_at(codes, int64_t(t) * hd + ch, f.bits);
          const double err = std::fabs(double(x) - double(y));
          if (f.scheme == FixedBitScheme::kFp8Block) {
            const float s = param(0);
            REQUIRE(y == fp8_value(uint8_t(q), s));
            REQUIRE(q == fp8_code(x, s));
            // e4m3: half a unit of the 3-bit mantissa, or 2^-10 s below the normal range.
            const double bound =
                std::max(std::ldexp(std::fabs(double(x)), -4), std::ldexp(double(s), -10)) +
                affine_slack(y);
            REQUIRE(err <= bound);
            worst = std::max(worst, err / bound);
          } else {
            const int64_t pi = f.scheme == FixedBitScheme::kChannelBlock
                                   ? 2 * int64_t(ch)
                                   : 2 * (int64_t(t) * (hd / f.group) + ch / f.group);
            const float s = param(pi), z = param(pi + 1);
            REQUIRE(q == affine_code(x, s, z, f.bits));
            REQUIRE(y == affine_value(q, s, z));
            const double bound = 0.5 * double(s) * (1 + 1e-6) + affine_slack(y);
            REQUIRE(err <= bound);
            worst = std::max(worst, err / bound);
          }
        }
      std::printf("hd %3d %-48s: %lld bytes, worst error / bound %.4f\n", hd,
                  f.describe(n, hd).c_str(), static_cast<long long>(blk.size()), worst);
    }
  }
}

TEST_CASE("fixed-bit byte accounting: data bits plus fp16 scales and zeros, nothing else") {
  const int hd = 128;
  KvOptions o;
  o.mode = KvMode::kKivi2;
  FixedBitFormats f = fixedbit_formats(o, hd);
  // kivi2: K 2 bits + one (scale, zero) per channel per 64 tokens; V 2 bits + one per token per
  // 32 channels.
  REQUIRE(fixedbit_block_bytes(f.k, 64, hd, 10).bits_per_value() == 2.0 + 32.0 / 64);
  REQUIRE(fixedbit_block_bytes(f.v, 128, hd, 10).bits_per_value() == 2.0 + 32.0 / 32);
  o.mode = KvMode::kKivi4;
  f = fixedbit_formats(o, hd);
  REQUIRE(fixedbit_block_bytes(f.k, 64, hd, 3).bits_per_value() == 4.0 + 32.0 / 64);
  REQUIRE(fixedbit_block_bytes(f.v, 128, hd, 3).bits_per_value() == 4.0 + 32.0 / 32);
  o.quant_group = 0;  // one group per token and head
  f = fixedbit_formats(o, hd);
  REQUIRE(fixedbit_block_bytes(f.v, 128, hd, 3).bits_per_value() == 4.0 + 32.0 / 128);
  o.mode = KvMode::kInt8;
  f = fixedbit_formats(o, hd);
  REQUIRE(fixedbit_block_bytes(f.k, 64, hd, 1).bits_per_value() == 8.0 + 32.0 / 128);
  REQUIRE(fixedbit_block_bytes(f.v, 128, hd, 1).bits_per_value() == 8.0 + 32.0 / 128);
  o.mode = KvMode::kFp8;
  f = fixedbit_formats(o, hd);
  REQUIRE(fixedbit_block_bytes(f.k, 64, hd, 1).bits_per_value() == 8.0 + 16.0 / (64 * hd));
  const CodecBytes b = fixedbit_block_bytes(f.v, 128, hd, 4);
  REQUIRE(b.payload == 4u * 128 * hd);
  REQUIRE(b.params == 4u * 2);
  REQUIRE(b.total_bytes() == b.payload + b.params);
  REQUIRE(b.n_blocks == 4);
  // The cache's stats: K and V in blocks, the window apart, ratio over the blocks.
  o.mode = KvMode::kKivi2;
  o.quant_group = 32;
  const KvShape shape{2, 2, 4, 2, hd};
  FixedBitCacheRef cache(shape, o);
  std::mt19937_64 rng(1);
  std::vector<float> k, v;
  for (int l = 0; l < 2; ++l)
    for (int s = 0; s < 2; ++s) {
      fill_kv(rng, 400 + 100 * s, 2 * hd, k, v);
      cache.append(l, s, k.data(), v.data(), 400 + 100 * s);
    }
  cache.commit();
  const KvStats st = cache.stats();
  REQUIRE(st.compressed);
  // K: 400 -> 256 in blocks (400 - 256 < 128 + 64), 500 -> 320; V: 400 -> 128, 500 -> 128.
  REQUIRE(st.k.n_values == uint64_t(2) * (256 + 320) * 2 * hd);
  REQUIRE(st.v.n_values == uint64_t(2) * (128 + 128) * 2 * hd);
  REQUIRE(st.k_bits() == 2.5);
  REQUIRE(st.v_bits() == 3.0);
  REQUIRE(st.window_k_values == uint64_t(2) * (144 + 180) * 2 * hd);
  REQUIRE(st.raw_blocks() == 0);
  REQUIRE(st.ratio() == Approx(16.0 * (st.k.n_values + st.v.n_values) /
                               (2.5 * st.k.n_values + 3.0 * st.v.n_values)));
  REQUIRE(uint64_t(cache.bytes()) == st.total_bytes());
  // Options and modes it rejects.
  o.quant_group = 48;
  REQUIRE_THROWS_WITH(FixedBitCacheRef(shape, o), HasSubstr("--quant-group"));
  o.quant_group = 32;
  o.mode = KvMode::kKvcomp;
  REQUIRE_THROWS_WITH(FixedBitCacheRef(shape, o), HasSubstr("not a fixed-bit mode"));
  REQUIRE(parse_kv_mode("kivi2") == KvMode::kKivi2);
  REQUIRE(parse_kv_mode("kivi4") == KvMode::kKivi4);
  REQUIRE(parse_kv_mode("int8") == KvMode::kInt8);
  REQUIRE(parse_kv_mode("fp8") == KvMode::kFp8);
}

TEST_CASE("fixed-bit cache: attention over dequantized blocks + raw window, blocks never redone") {
  for (KvMode mode : kModes) {
    for (int hd : {64, 128}) {
      for (int group : {1, 4}) {
        const int n_layers = 2, n_kv = 2, n_seqs = 3, n_heads = n_kv * group, row = n_kv * hd;
        KvOptions o;
        o.mode = mode;
        o.block_k = 16;
        o.block_v = 32;
        o.window_k = hd == 64 ? 0 : 24;
        o.window_v = hd == 64 ? 8 : 50;
        const KvShape shape{n_layers, n_seqs, n_heads, n_kv, hd};
        FixedBitCacheRef cache(shape, o);
        const FixedBitFormats f = fixedbit_formats(o, hd);
        INFO(kv_mode_name(mode) << " head_dim " << hd << " GQA " << group);
        // Expectation per (layer, seq): the fp16 values, what attention must read, the blocks.
        struct Expect {
          std::vector<float> in[2], read[2];
          int done[2] = {0, 0};
          std::vector<std::vector<uint8_t>> blocks[2];  // [head * max + b]
        };
        std::vector<Expect> ex(size_t(n_layers) * n_seqs);
        std::mt19937_64 rng(uint64_t(hd + group)), qrng(3);
        std::normal_distribution<float> g(0.0f, 1.0f);
        const int prompt[n_seqs] = {1, 37, 129};
        double max_diff = 0;
        for (int step = 0; step <= 60; ++step) {
          for (int l = 0; l < n_layers; ++l)
            for (int s = 0; s < n_seqs; ++s) {
              const int n = step == 0 ? prompt[s] : (s == 1 && step % 10 == 0 ? 3 : 1);
              std::vector<float> k, v;
              fill_kv(rng, n, row, k, v);
              cache.append(l, s, k.data(), v.data(), n);
              Expect& e = ex[size_t(l) * n_seqs + s];
              for (int p = 0; p < 2; ++p)
                for (float x : p == 0 ? k : v) {
                  e.in[p].push_back(round_fp16(x));
                  e.read[p].push_back(round_fp16(x));
                }
              const int len = int(e.in[0].size() / row);
              std::vector<float> q(size_t(n) * n_heads * hd), got(q.size()), want(q.size());
              for (float& x : q) x = g(qrng);
              cache.attend(l, s, q.data(), n, got.data());
              std::vector<int> pos(n);
              for (int i = 0; i < n; ++i) pos[i] = len - n + i;
              attention_ref(q.data(), pos.data(), n, e.read[0].data(), e.read[1].data(), len, row,
                            n_heads, n_kv, hd, want.data());
              for (size_t i = 0; i < got.size(); ++i)
                max_diff = std::max(max_diff, std::fabs(double(got[i]) - double(want[i])));
            }
          cache.commit();
          for (int l = 0; l < n_layers; ++l)
            for (int s = 0; s < n_seqs; ++s) {
              Expect& e = ex[size_t(l) * n_seqs + s];
              const int len = int(e.in[0].size() / row);
              for (int p = 0; p < 2; ++p) {
                const int B = p == 0 ? o.block_k : o.block_v, W = p == 0 ? o.window_k : o.window_v;
                const FixedBitFormat& fp = p == 0 ? f.k : f.v;
                for (; len - e.done[p] >= W + B; e.done[p] += B)
                  for (int h = 0; h < n_kv; ++h) {
                    std::vector<uint8_t> blk(size_t(fp.block_bytes(B, hd)));
                    const size_t at = size_t(e.done[p]) * row + size_t(h) * hd;
                    fixedbit_quantize_ref(fp, e.in[p].data() + at, B, hd, row, blk.data());
                    fixedbit_dequantize_ref(fp, blk.data(), B, hd, e.read[p].data() + at, row);
                    e.blocks[p].push_back(blk);
                  }
                const KvPart part = KvPart(p);
                REQUIRE(cache.done(part, l, s) == e.done[p]);
                REQUIRE(cache.values(part, l, s) == e.read[p]);
                // Every block so far, byte for byte (blocks are pushed block-major, head-minor).
                for (int b = 0; b < e.done[p] / B; ++b)
                  for (int h = 0; h < n_kv; ++h) {
                    const auto& want = e.blocks[p][size_t(b) * n_kv + h];
                    const uint8_t* got = cache.block(part, l, s, h, b);
                    REQUIRE(std::equal(want.begin(), want.end(), got));
                  }
              }
            }
        }
        std::printf("%-5s hd %3d GQA %d: K %lld V %lld blocks, max attention diff %.3g\n",
                    kv_mode_name(mode), hd, group, static_cast<long long>(cache.stats().k.n_blocks),
                    static_cast<long long>(cache.stats().v.n_blocks), max_diff);
        REQUIRE(max_diff == 0.0);  // the same attention_ref over the same values
        REQUIRE(cache.stats().k.n_blocks > 0);
        REQUIRE(cache.stats().v.n_blocks > 0);
      }
    }
  }
}

TEST_CASE("demo model: perplexity with each fixed-bit baseline (decode-time protocol)") {
  const ModelFiles files = open_model_files(default_model_dir());
  auto engine = make_cpu_engine(files);
  const std::vector<int> ids = heldout_ids(files, 60000);
  PerplexityOptions o;
  o.ctx = 512;
  o.max_windows = 2;
  o.batch = 2;
  o.prefill = perplexity_default_prefill(o.ctx);
  o.kv.mode = KvMode::kFp16;
  const PerplexityResult r16 = perplexity(*engine, ids, o, nullptr);
  double ppl[4] = {};
  for (int i = 0; i < 4; ++i) {
    o.kv.mode = kModes[i];
    const PerplexityResult r = perplexity(*engine, ids, o, nullptr);
    std::printf(
        "demo ctx 512, 2 windows: %-5s ppl %.4f (fp16 %.4f, %+.3f%%), K %.3f V %.3f "
        "bits/value, ratio %.2fx\n",
        kv_mode_name(kModes[i]), r.ppl, r16.ppl, 100.0 * (r.ppl / r16.ppl - 1), r.kv.k_bits(),
        r.kv.v_bits(), r.kv.ratio());
    REQUIRE(std::isfinite(r.ppl));
    REQUIRE(r.kv.compressed);
    REQUIRE(r.kv.k.n_blocks > 0);
    REQUIRE(r.kv.v.n_blocks > 0);
    REQUIRE(int64_t(r.kv.total_bytes()) > 0);
    ppl[i] = r.ppl;
  }
  const double kivi2 = ppl[0], kivi4 = ppl[1], int8 = ppl[2], fp8 = ppl[3];
  REQUIRE(std::fabs(int8 / r16.ppl - 1) < kTolPplInt8);
  REQUIRE(std::fabs(fp8 / r16.ppl - 1) < kTolPplFp8);
  REQUIRE(kivi2 > kivi4);
  REQUIRE(kivi4 > r16.ppl * (1 - kTolPplInt8));
  // The engine reads the cache back as attention reads it.
  o.kv.mode = KvMode::kKivi4;
  engine->start(1, 400, o.kv);
  std::vector<float> logits;
  engine->forward({{0, std::vector<int>(ids.begin(), ids.begin() + 400)}}, false, logits);
  std::vector<float> k, v;
  REQUIRE(engine->read_kv(0, 0, k, v));
  REQUIRE(k.size() == size_t(400) * files.config.kv_dim());
  REQUIRE(int64_t(engine->kv_stats().total_bytes()) == engine->kv_bytes());
}
