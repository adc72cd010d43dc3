// The KVComp-compressed KV cache of the CPU backend (compress/kv_cache_kvcomp_ref.h) against an
// expectation built here from the codec alone, and the CPU engine with it: perplexity of the
// demo model with a compressed cache against an fp16 one under the decode-time protocol.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "compress/codec_ref.h"
#include "compress/kv_cache_kvcomp_ref.h"
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

// |x - x'| <= d/2 up to the fp32 rounding of x/d and of (s + m0) * d.
constexpr double kTolBoundRel = 1e-6;     // of d/2
constexpr double kTolBoundAbs = 0x1p-22;  // of |x|
// The compressed cache against the fp16 one, demo model, ctx 1024 (the acceptance).
constexpr double kTolPplKvcomp = 0.01;
// The same fp16 math in another order (one prefill against prefill + decode steps).
constexpr double kTolPplProtocol = 1e-4;

// K-like rows: per-channel scale and offset (outlier channels), Gaussian noise; V-like rows:
// Gaussian with rare outliers.
struct KvSource {
  std::mt19937_64 rng;
  int row;
  std::vector<float> k_scale, k_bias;
  KvSource(uint64_t seed, int row_) : rng(seed), row(row_), k_scale(row_), k_bias(row_) {
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    for (int c = 0; c < row; ++c) {
      k_scale[c] = u(rng) < 0.05f ? 8.0f : 0.5f + u(rng);
      k_bias[c] = 2.0f * (u(rng) - 0.5f);
    }
  }
  void fill(std::vector<float>& k, std::vector<float>& v, int n) {
    std::normal_distribution<float> g(0.0f, 1.0f);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    k.resize(size_t(n) * row);
    v.resize(size_t(n) * row);
    for (int t = 0; t < n; ++t) {
      for (int c = 0; c < row; ++c) {
        k[size_t(t) * row + c] = k_bias[c] + k_scale[c] * g(rng);
        v[size_t(t) * row + c] = g(rng) * (u(rng) < 0.01f ? 10.0f : 1.0f);
      }
    }
  }
};

struct CacheCase {
  int head_dim;
  int group;  // n_heads / n_kv_heads
  int window_k, window_v;
  bool k_channelwise = false;
  bool codebook_per_head = false;
  bool v_params32 = false;  // V blocks keep 32-bit token params (KvOptions::v_params16 off)
};

// What the cache must hold for one (layer, seq), built from the codec alone.
struct Expect {
  std::vector<float> in[2];    // [len, n_kv, hd] the fp16 values that entered
  std::vector<float> read[2];  // [len, n_kv, hd] what attention must read
  int done[2] = {0, 0};
  std::vector<std::vector<std::vector<uint8_t>>> blocks[2];  // [head][block] -> bytes
};

void run_cache_case(const CacheCase& cc) {
  const int n_layers = 2, n_kv = 2, n_seqs = 3;
  const int n_heads = n_kv * cc.group, hd = cc.head_dim, row = n_kv * hd;
  KvOptions o;
  o.mode = KvMode::kKvcomp;
  o.block_k = 16;
  o.block_v = 32;
  o.window_k = cc.window_k;
  o.window_v = cc.window_v;
  o.k_channelwise = cc.k_channelwise;
  o.codebook_per_head = cc.codebook_per_head;
  o.v_params16 = !cc.v_params32;
  const CodecOptions co = codec_options(o);
  REQUIRE(co.v_kind() == (cc.v_params32 ? BlockKind::kV : BlockKind::kVCompact));
  const KvShape shape{n_layers, n_seqs, n_heads, n_kv, hd};
  KvCompCacheRef cache(shape, o);
  INFO("head_dim " << hd << ", GQA " << cc.group << ", windows " << cc.window_k << "/"
                   << cc.window_v << (cc.k_channelwise ? ", K channel-wise" : "")
                   << (cc.codebook_per_head ? ", codebook per head" : "")
                   << (cc.v_params32 ? ", V params 32-bit" : ""));

  const int n_cb = cc.codebook_per_head ? n_kv : 1;
  std::vector<Expect> ex(size_t(n_layers) * n_seqs);
  for (auto& e : ex)
    for (int p = 0; p < 2; ++p) e.blocks[p].resize(n_kv);
  std::vector<std::vector<Codebook>> cbs[2];  // [K|V][layer] -> [n_cb]; empty until built
  for (int p = 0; p < 2; ++p) cbs[p].resize(n_layers);
  auto at = [&](int l, int s) -> Expect& { return ex[size_t(l) * n_seqs + s]; };
  auto B = [&](int p) { return p == 0 ? co.block_k : co.block_v; };
  auto W = [&](int p) { return p == 0 ? cc.window_k : cc.window_v; };
  auto eb = [&](int p) { return p == 0 ? co.eb_k : co.eb_v; };
  auto kind = [&](int p) { return p == 0 ? co.k_kind() : co.v_kind(); };
  auto alphabet = [&](int p) { return p == 0 ? co.k_alphabet() : co.v_alphabet(); };

  KvSource src(uint64_t(hd * 100 + cc.group * 10 + cc.window_k), row);
  std::mt19937_64 qrng(7);
  std::normal_distribution<float> g(0.0f, 1.0f);
  double max_attn_diff = 0, max_err_bound = 0;
  int64_t n_blocks = 0, n_raw = 0, n_compact = 0;

  // Step 0: prompts of 1, 37 and 129 tokens; then decode steps (every 10th step sequence 1
  // takes a chunk of 3 tokens), so blocks complete in prefill and mid-decode.
  const int prompt[n_seqs] = {1, 37, 129};
  for (int step = 0; step <= 70; ++step) {
    for (int l = 0; l < n_layers; ++l) {
      for (int s = 0; s < n_seqs; ++s) {
        const int n = step == 0 ? prompt[s] : (s == 1 && step % 10 == 0 ? 3 : 1);
        std::vector<float> k, v;
        src.fill(k, v, n);
        Expect& e = at(l, s);
        const int len0 = int(e.in[0].size() / row);
        // A stretch of tiny values that no fp16 step can quantize: raw-fallback blocks.
        if (l == 1 && s == 2) {
          for (int t = 0; t < n; ++t) {
            if (len0 + t < 32 || len0 + t >= 64) continue;
            for (int c = 0; c < hd; ++c) {
              const float x = 1e-5f * (1.0f + 0.006f * float((c + len0 + t) % 2));
              k[size_t(t) * row + hd + c] = x;
              v[size_t(t) * row + hd + c] = x;
            }
          }
        }
        cache.append(l, s, k.data(), v.data(), n);
        for (int p = 0; p < 2; ++p) {
          for (float x : p == 0 ? k : v) {
            e.in[p].push_back(round_fp16(x));
            e.read[p].push_back(round_fp16(x));
          }
        }
        std::vector<float> q(size_t(n) * n_heads * hd), got(q.size()), want(q.size());
        for (float& x : q) x = g(qrng);
        cache.attend(l, s, q.data(), n, got.data());
        const int len = len0 + n;
        std::vector<int> pos(n);
        for (int i = 0; i < n; ++i) pos[i] = len - n + i;
        attention_ref(q.data(), pos.data(), n, e.read[0].data(), e.read[1].data(), len, row,
                      n_heads, n_kv, hd, want.data());
        for (size_t i = 0; i < got.size(); ++i)
          max_attn_diff = std::max(max_attn_diff, std::fabs(double(got[i]) - double(want[i])));
      }
    }
    cache.commit();

    // The commit, from the codec alone.
    for (int p = 0; p < 2; ++p) {
      const KvPart part = KvPart(p);
      for (int l = 0; l < n_layers; ++l) {
        bool due = false;
        for (int s = 0; s < n_seqs; ++s) {
          const Expect& e = at(l, s);
          due = due || int(e.in[p].size() / row) - e.done[p] >= W(p) + B(p);
        }
        if (due && cbs[p][l].empty()) {
          std::vector<uint64_t> hist(size_t(n_cb) * alphabet(p), 0);
          for (int s = 0; s < n_seqs; ++s) {
            const Expect& e = at(l, s);
            const int len = int(e.in[p].size() / row);
            for (int h = 0; h < n_kv; ++h) {
              for (int t = e.done[p]; t + B(p) <= len; t += B(p)) {
                const QuantBlock qb =
                    quantize_block(kind(p), e.in[p].data() + size_t(t) * row + size_t(h) * hd, B(p),
                                   hd, row, eb(p), alphabet(p) - 1);
                histogram_add(qb, hist.data() + size_t(n_cb > 1 ? h : 0) * alphabet(p),
                              alphabet(p));
              }
            }
          }
          for (int c = 0; c < n_cb; ++c) {
            cbs[p][l].push_back(Codebook::from_histogram(hist.data() + size_t(c) * alphabet(p),
                                                         alphabet(p), co.max_code_len));
          }
        }
        for (int h = 0; h < n_kv; ++h) {
          const Codebook* got_cb = cache.codebook(part, l, h);
          if (cbs[p][l].empty()) {
            REQUIRE(got_cb == nullptr);
          } else {
            REQUIRE(got_cb != nullptr);
            REQUIRE(*got_cb == cbs[p][l][size_t(n_cb > 1 ? h : 0)]);
          }
        }
        for (int s = 0; s < n_seqs; ++s) {
          Expect& e = at(l, s);
          const int len = int(e.in[p].size() / row);
          int done = e.done[p];
          for (; len - done >= W(p) + B(p); done += B(p)) {
            for (int h = 0; h < n_kv; ++h) {
              const Codebook& cb = cbs[p][l][size_t(n_cb > 1 ? h : 0)];
              const size_t off = size_t(done) * row + size_t(h) * hd;
              std::vector<uint8_t> bytes;
              encode_block_ref(kind(p), e.in[p].data() + off, B(p), hd, row, eb(p), cb, bytes);
              decode_block_ref(bytes.data(), bytes.size(), cb, e.read[p].data() + off, row);
              // The bound, against the fp16 value that entered.
              const QuantBlock qb = decode_block_symbols_ref(bytes.data(), bytes.size(), cb);
              ++n_blocks;
              n_raw += qb.raw();
              n_compact += qb.kind == BlockKind::kVCompact;
              for (int t = 0; t < B(p); ++t) {
                for (int c = 0; c < hd; ++c) {
                  const double x = e.in[p][off + size_t(t) * row + c];
                  const double y = e.read[p][off + size_t(t) * row + c];
                  if (qb.raw()) {
                    REQUIRE(x == y);
                    continue;
                  }
                  const double half_d = 0.5 * double(qb.step_of(t, c).d);
                  const double err = std::fabs(x - y);
                  max_err_bound = std::max(max_err_bound, err / half_d);
                  REQUIRE(err <= half_d * (1 + kTolBoundRel) + kTolBoundAbs * std::fabs(x));
                }
              }
              e.blocks[p][h].push_back(std::move(bytes));
            }
          }
          e.done[p] = done;
          REQUIRE(cache.done(part, l, s) == done);
          REQUIRE(cache.n_blocks(part, l, s) == int(e.blocks[p][0].size()));
          REQUIRE(cache.values(part, l, s) == e.read[p]);
        }
      }
    }

    // Every block, old ones included, holds the bytes it was created with (nothing is
    // re-encoded), and the bytes add up.
    uint64_t want_bytes = 0;
    for (int p = 0; p < 2; ++p) {
      for (int l = 0; l < n_layers; ++l) {
        want_bytes += cbs[p][l].size() * size_t(alphabet(p));
        for (int s = 0; s < n_seqs; ++s) {
          const Expect& e = at(l, s);
          want_bytes += 2 * (e.in[p].size() - size_t(e.done[p]) * row);
          for (int h = 0; h < n_kv; ++h) {
            for (size_t b = 0; b < e.blocks[p][h].size(); ++b) {
              const auto blk = cache.block(KvPart(p), l, s, h, int(b));
              REQUIRE(std::vector<uint8_t>(blk.data, blk.data + blk.bytes) == e.blocks[p][h][b]);
              want_bytes += blk.bytes;
            }
          }
        }
      }
    }
    const KvStats st = cache.stats();
    REQUIRE(uint64_t(cache.bytes()) == want_bytes);
    REQUIRE(st.total_bytes() == want_bytes);
    REQUIRE(st.k.n_blocks + st.v.n_blocks == uint64_t(n_blocks));
    REQUIRE(st.raw_blocks() == uint64_t(n_raw));
    REQUIRE(st.v.n_compact_blocks == uint64_t(n_compact));
    REQUIRE(st.k.n_compact_blocks == 0);
  }
  std::printf(
      "cache hd %3d GQA %d windows %2d/%3d%s%s%s: %lld blocks (%lld raw, %lld compact V), max "
      "attention diff %.3g, max |x - x'| / (d/2) %.6f\n",
      hd, cc.group, cc.window_k, cc.window_v, cc.k_channelwise ? " K-channel" : "",
      cc.codebook_per_head ? " cb/head" : "", cc.v_params32 ? " V-params32" : "",
      static_cast<long long>(n_blocks), static_cast<long long>(n_raw),
      static_cast<long long>(n_compact), max_attn_diff, max_err_bound);
  REQUIRE(max_attn_diff == 0.0);  // the same attention_ref over the same values
  REQUIRE(n_raw > 0);             // the tiny stretch went raw
  REQUIRE(n_blocks > n_raw);
  // V blocks are compact unless turned off (the V-like data here always allows it).
  if (cc.v_params32) {
    REQUIRE(n_compact == 0);
  } else {
    REQUIRE(n_compact > 0);
  }
  for (int p = 0; p < 2; ++p)
    for (int l = 0; l < n_layers; ++l) REQUIRE(!cbs[p][l].empty());
}

}  // namespace

TEST_CASE("KVComp cache: attention over decoded blocks + raw window, blocks never re-encoded") {
  for (int hd : {64, 128}) {
    for (int group : {1, 2, 4}) {
      run_cache_case({hd, group, 0, 0});
      // V's window holds the whole prompt: its codebooks are built mid-decode.
      run_cache_case({hd, group, 24, 150});
    }
  }
  run_cache_case({64, 2, 8, 40, true, false});
  run_cache_case({128, 4, 0, 0, false, true});
  run_cache_case({64, 1, 24, 150, true, true});
  run_cache_case({128, 2, 24, 150, false, false, true});
}

TEST_CASE("KVComp cache: a short prompt compresses nothing; bad options are rejected") {
  KvOptions o;
  o.mode = KvMode::kKvcomp;
  const KvShape shape{1, 2, 4, 2, 64};
  KvCompCacheRef cache(shape, o);
  KvSource src(3, 128);
  std::vector<float> k, v;
  src.fill(k, v, 100);
  cache.append(0, 0, k.data(), v.data(), 100);
  cache.commit();
  REQUIRE(cache.done(KvPart::kK, 0, 0) == 0);
  REQUIRE(cache.codebook(KvPart::kK, 0, 0) == nullptr);
  const KvStats st = cache.stats();
  REQUIRE(st.compressed);
  REQUIRE(st.compressed_bytes() == 0);
  REQUIRE(st.ratio() == 0.0);
  REQUIRE(st.window_bytes() == 2u * 2u * 100u * 128u);
  REQUIRE(uint64_t(cache.bytes()) == st.window_bytes());
  o.eb_k = 0.001f;
  REQUIRE_THROWS_WITH(KvCompCacheRef(shape, o), HasSubstr("--eb-k"));
  o.eb_k = 0.05f;
  o.block_v = 100;
  REQUIRE_THROWS_WITH(KvCompCacheRef(shape, o), HasSubstr("--block-v"));
}

TEST_CASE("CPU engine: read_kv and kv_stats of the dense and the compressed cache") {
  const ModelFiles files = open_model_files(default_model_dir());
  const LlamaConfig& cfg = files.config;
  auto engine = make_cpu_engine(files);
  const std::vector<int> ids = heldout_ids(files, 20000);
  const int N = 400;
  REQUIRE(int(ids.size()) >= N);
  const std::vector<int> prompt(ids.begin(), ids.begin() + N);
  std::vector<float> logits;
  KvOptions kv;
  kv.mode = KvMode::kFp16;
  engine->start(1, N, kv);
  engine->forward({{0, prompt}}, false, logits);
  REQUIRE(!engine->kv_stats().compressed);
  const size_t row = size_t(cfg.kv_dim()), hd = size_t(cfg.head_dim);
  std::vector<std::vector<float>> k16(cfg.n_layers), v16(cfg.n_layers);
  for (int l = 0; l < cfg.n_layers; ++l) {
    REQUIRE(engine->read_kv(l, 0, k16[l], v16[l]));
    REQUIRE(k16[l].size() == N * row);
    for (float x : k16[l]) REQUIRE(x == round_fp16(x));
  }

  // One prefill: K and V come out of the same fp32 forward, so the compressed cache holds the
  // fp16 cache's values, quantized in its blocks.
  kv.mode = KvMode::kKvcomp;
  engine->start(1, N, kv);
  engine->forward({{0, prompt}}, false, logits);
  const KvStats st = engine->kv_stats();
  REQUIRE(st.compressed);
  REQUIRE(int64_t(st.total_bytes()) == engine->kv_bytes());
  // K: 400 - 256 = 144 < window 128 + block 64; V: 400 - 128 = 272 < 256 + 128.
  REQUIRE(st.k.n_values == uint64_t(cfg.n_layers) * 256 * row);
  REQUIRE(st.v.n_values == uint64_t(cfg.n_layers) * 128 * row);
  double worst = 0;
  for (int l = 0; l < cfg.n_layers; ++l) {
    std::vector<float> k, v;
    REQUIRE(engine->read_kv(l, 0, k, v));
    for (int p = 0; p < 2; ++p) {
      const std::vector<float>& a = p == 0 ? k16[l] : v16[l];
      const std::vector<float>& b = p == 0 ? k : v;
      const int done = p == 0 ? 256 : 128, block = p == 0 ? kv.block_k : kv.block_v;
      const float eb = p == 0 ? kv.eb_k : kv.eb_v;
      for (size_t i = size_t(done) * row; i < a.size(); ++i) REQUIRE(a[i] == b[i]);
      // d <= eb * range of the group: K, a block of one head; V, one token of one head.
      for (int t0 = 0; t0 < done; t0 += (p == 0 ? block : 1)) {
        const int nt = p == 0 ? block : 1;
        for (size_t h = 0; h < size_t(cfg.n_kv_heads); ++h) {
          float mn = INFINITY, mx = -INFINITY;
          for (int t = t0; t < t0 + nt; ++t)
            for (size_t c = 0; c < hd; ++c) {
              mn = std::min(mn, a[t * row + h * hd + c]);
              mx = std::max(mx, a[t * row + h * hd + c]);
            }
          const double half = 0.5 * double(eb) * double(mx - mn);
          for (int t = t0; t < t0 + nt; ++t)
            for (size_t c = 0; c < hd; ++c) {
              const size_t i = t * row + h * hd + c;
              const double err = std::fabs(double(a[i]) - double(b[i]));
              worst = std::max(worst, err / half);
              REQUIRE(err <= half * (1 + kTolBoundRel) + kTolBoundAbs * std::fabs(a[i]));
            }
        }
      }
    }
  }
  std::printf("demo prefill %d: compressed values within %.4f of eb * range / 2\n", N, worst);
}

TEST_CASE("demo model: the compressed cache's perplexity is within 1% of fp16 (ctx 1024)") {
  const ModelFiles files = open_model_files(default_model_dir());
  auto engine = make_cpu_engine(files);
  const std::vector<int> ids = heldout_ids(files, 200000);
  PerplexityOptions o;
  o.ctx = 1024;
  o.max_windows = 2;
  o.batch = 2;
  o.prefill = 256;
  o.kv.mode = KvMode::kFp16;
  const PerplexityResult r16 = perplexity(*engine, ids, o, nullptr);
  o.kv.mode = KvMode::kKvcomp;
  const PerplexityResult rc = perplexity(*engine, ids, o, nullptr);
  std::printf(
      "demo ctx 1024, %d windows, prefill 256: fp16 %.5f, kvcomp %.5f (%+.3f%%); K %.3f, "
      "V %.3f bits/value, ratio %.2fx (%.2fx with the window), %llu raw blocks\n",
      rc.windows, r16.ppl, rc.ppl, 100.0 * (rc.ppl / r16.ppl - 1), rc.kv.k_bits(), rc.kv.v_bits(),
      rc.kv.ratio(), rc.kv.ratio_with_window(),
      static_cast<unsigned long long>(rc.kv.raw_blocks()));
  REQUIRE(rc.windows == 2);
  REQUIRE(!r16.kv.compressed);
  REQUIRE(rc.kv.compressed);
  REQUIRE(std::fabs(rc.ppl / r16.ppl - 1) < kTolPplKvcomp);
  REQUIRE(rc.kv.ratio() > 2.0);
  REQUIRE(rc.kv.k_bits() > 0.5);
  REQUIRE(rc.kv.k_bits() < 8.0);
  REQUIRE(rc.kv.v_bits() > 0.5);
  REQUIRE(rc.kv.v_bits() < 8.0);
  REQUIRE(rc.kv.v.n_compact_blocks > 0);
}

TEST_CASE("demo model: fp16 perplexity is the same with one prefill or prefill + decode steps") {
  const ModelFiles files = open_model_files(default_model_dir());
  auto engine = make_cpu_engine(files);
  const std::vector<int> ids = heldout_ids(files, 200000);
  PerplexityOptions o;
  o.ctx = 1024;
  o.max_windows = 2;
  o.batch = 2;
  o.kv.mode = KvMode::kFp16;
  const double single = perplexity(*engine, ids, o, nullptr).ppl;
  o.prefill = perplexity_default_prefill(o.ctx);
  REQUIRE(o.prefill == 256);
  const double steps = perplexity(*engine, ids, o, nullptr).ppl;
  std::printf("demo ctx 1024 fp16: one prefill %.5f, prefill 256 + decode steps %.5f\n", single,
              steps);
  REQUIRE(std::fabs(steps / single - 1) < kTolPplProtocol);
}

TEST_CASE("kvcomp-fixed reaches attention with kvcomp's values in other codes") {
  // Two codebooks (Huffman from the prefill's histogram, fixed-length), two encoders' outputs,
  // two decodes: the values attention reads must still be the same, bit for bit, and differ
  // from fp16's. (kvcomp-unfused is the same CPU cache as kvcomp: only the GPU kernels differ.)
  const ModelFiles files = open_model_files(default_model_dir());
  auto engine = make_cpu_engine(files);
  const std::vector<int> ids = heldout_ids(files, 20000);
  PerplexityOptions o;
  o.ctx = 512;
  o.max_windows = 1;
  o.prefill = 128;
  o.kv.mode = KvMode::kKvcomp;
  const PerplexityResult a = perplexity(*engine, ids, o, nullptr);
  o.kv.mode = KvMode::kKvcompFixed;
  const PerplexityResult b = perplexity(*engine, ids, o, nullptr);
  o.kv.mode = KvMode::kFp16;
  const PerplexityResult f = perplexity(*engine, ids, o, nullptr);
  REQUIRE(a.ppl == b.ppl);
  REQUIRE(a.ppl != f.ppl);
  REQUIRE(a.kv.k.n_blocks > 0);
  REQUIRE(a.kv.v.n_blocks > 0);
  REQUIRE(b.kv.k.n_blocks == a.kv.k.n_blocks);
  // Fixed-length codes: 5-bit K, 4-bit V payloads against Huffman's shorter ones.
  REQUIRE(b.kv.total_bytes() > a.kv.total_bytes());
  REQUIRE(b.kv.k_bits() > a.kv.k_bits() + 0.5);
}

TEST_CASE("kvcomp-fixed's cache codes with the fixed-length codebooks of its bounds") {
  KvOptions o;
  o.mode = KvMode::kKvcompFixed;
  const KvShape shape{1, 1, 4, 2, 64};
  KvCompCacheRef cache(shape, o);
  KvSource src(11, 128);
  std::vector<float> k, v;
  src.fill(k, v, 600);
  cache.append(0, 0, k.data(), v.data(), 600);
  cache.commit();
  REQUIRE(cache.done(KvPart::kK, 0, 0) > 0);
  REQUIRE(cache.done(KvPart::kV, 0, 0) > 0);
  // eb_K 0.05: 22 symbols in 5 bits; eb_V 0.1 (compact V params): 12 symbols in 4 bits.
  REQUIRE(cache.codebook(KvPart::kK, 0, 0)->fixed_bits() == 5);
  REQUIRE(cache.codebook(KvPart::kV, 0, 0)->fixed_bits() == 4);
  o.mode = KvMode::kKvcomp;  // Huffman codebooks of the same data are not fixed-length
  KvCompCacheRef huff(shape, o);
  huff.append(0, 0, k.data(), v.data(), 600);
  huff.commit();
  REQUIRE(huff.codebook(KvPart::kK, 0, 0)->fixed_bits() == 0);
}
