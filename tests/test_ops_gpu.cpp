// Every GPU op against its CPU twin over odd sizes, with fresh random inputs and outputs
// poisoned (NaN) before each run so that an unwritten element fails. Label: gpu.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "runtime/cuda_check.h"
#include "runtime/cuda_context.h"
#include "runtime/device_buffer.h"
#include "runtime/gemm.h"
#include "runtime/half.h"
#include "runtime/kv_cache_cuda.h"
#include "runtime/kv_cache_ref.h"
#include "runtime/ops_cuda.h"
#include "runtime/ops_ref.h"
#include "tests/catch.h"
#include "tests/gpu_test_util.h"

using namespace kvcomp;
using namespace kvcomp::test;

namespace {

std::mt19937_64& rng() {
  static std::mt19937_64 r(std::random_device{}());
  return r;
}

std::vector<float> randn(size_t n, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng());
  return v;
}

std::vector<uint16_t> to_bf16(const std::vector<float>& f) {
  std::vector<uint16_t> o(f.size());
  for (size_t i = 0; i < f.size(); ++i) o[i] = float_to_bf16(f[i]);
  return o;
}
std::vector<float> from_bf16(const std::vector<uint16_t>& h) {
  std::vector<float> o(h.size());
  for (size_t i = 0; i < h.size(); ++i) o[i] = bf16_to_float(h[i]);
  return o;
}

constexpr double kTolFp32 = 1e-5;      // fp32 arithmetic, different summation order
constexpr double kTolBf16 = 1e-2;      // one rounding to bf16
constexpr double kTolFp16Attn = 3e-3;  // q and probabilities rounded to fp16
// Fused prefill attention against attention_ref over fp16-rounded q, k, v: the kernel also rounds
// each probability to fp16 (relative 2^-11 = 4.9e-4 each, independent, so the output's relative
// norm error is about that divided by sqrt of the keys summed) and its fp32 sums run in another
// order; the fp16 output adds 2^-11 per element. Measured errors should sit near 5e-4.
constexpr double kTolPrefillF16 = 3e-3;
constexpr double kTolPrefillBf16 = 1e-2;  // the same, then one rounding of the output to bf16

}  // namespace

TEST_CASE("embedding_cuda equals embedding_ref", "[gpu]") {
  CudaContext ctx;
  for (int dim : {1, 7, 130, 4096}) {
    const int vocab = 37, n = 9;
    const auto table = to_bf16(randn(size_t(vocab) * dim));
    std::vector<int> ids(n);
    for (auto& i : ids) i = int(rng()() % vocab);
    auto d_table = upload(table);
    auto d_ids = upload(ids);
    auto out = poisoned(size_t(n) * dim * 4);
    embedding_cuda(ctx, DType::kBF16, d_table.get(), d_ids.as<int>(), n, dim, out.as<float>());
    ctx.synchronize();
    std::vector<float> ref(size_t(n) * dim);
    embedding_ref(from_bf16(table).data(), ids.data(), n, dim, ref.data());
    REQUIRE(download<float>(out, ref.size()) == ref);
  }
}

TEST_CASE("rmsnorm_cuda equals rmsnorm_ref (rounded to bf16)", "[gpu]") {
  CudaContext ctx;
  for (int dim : {1, 33, 512, 5120}) {
    const int n = 5;
    const auto x = randn(size_t(n) * dim, 3.0f);
    const auto w = to_bf16(randn(dim));
    auto dx = upload(x);
    auto dw = upload(w);
    auto out = poisoned(size_t(n) * dim * 2);
    rmsnorm_cuda(ctx, DType::kBF16, dx.as<float>(), dw.get(), nullptr, n, dim, 1e-5f, out.get());
    ctx.synchronize();
    std::vector<float> ref(size_t(n) * dim);
    rmsnorm_ref(x.data(), from_bf16(w).data(), n, dim, 1e-5f, ref.data());
    const double e = rel_err(from_bf16(download<uint16_t>(out, ref.size())), ref);
    INFO("dim " << dim << " rel err " << e);
    REQUIRE(e < kTolBf16);
    // Row gather: rows {3, 0} of x.
    const std::vector<int> rows = {3, 0};
    auto drows = upload(rows);
    auto out2 = poisoned(size_t(2) * dim * 2);
    rmsnorm_cuda(ctx, DType::kBF16, dx.as<float>(), dw.get(), drows.as<int>(), 2, dim, 1e-5f,
                 out2.get());
    ctx.synchronize();
    const auto got = download<uint16_t>(out2, size_t(2) * dim);
    const auto all = download<uint16_t>(out, size_t(n) * dim);
    for (int j = 0; j < dim; ++j) {
      REQUIRE(got[j] == all[size_t(3) * dim + j]);
      REQUIRE(got[dim + j] == all[j]);
    }
  }
}

TEST_CASE("rope_cuda equals rope_ref", "[gpu]") {
  CudaContext ctx;
  for (int hd : {64, 128}) {
    const int n = 7, heads = 5, kv_heads = 1, stride = (heads + 2 * kv_heads) * hd + 3;
    auto x = randn(size_t(n) * stride);
    std::vector<int> pos = {0, 1, 2, 100, 4095, 32767, 131071};
    std::vector<float> inv(hd / 2);
    for (int i = 0; i < hd / 2; ++i) inv[i] = float(std::pow(500000.0, -2.0 * i / hd));
    auto dx = upload(x);
    auto dp = upload(pos);
    auto di = upload(inv);
    rope_cuda(ctx, dx.as<float>(), stride, dp.as<int>(), n, heads, kv_heads, hd, di.as<float>());
    ctx.synchronize();
    const auto got = download<float>(dx, x.size());
    // CPU twin on q heads and k heads separately (each row: q then k, then v untouched).
    std::vector<float> q(size_t(n) * heads * hd), k(size_t(n) * kv_heads * hd);
    for (int t = 0; t < n; ++t) {
      std::copy_n(x.data() + size_t(t) * stride, heads * hd, q.data() + size_t(t) * heads * hd);
      std::copy_n(x.data() + size_t(t) * stride + heads * hd, kv_heads * hd,
                  k.data() + size_t(t) * kv_heads * hd);
    }
    rope_ref(q.data(), pos.data(), n, heads, hd, inv.data());
    rope_ref(k.data(), pos.data(), n, kv_heads, hd, inv.data());
    double max_err = 0;
    for (int t = 0; t < n; ++t) {
      for (int e = 0; e < heads * hd; ++e)
        max_err = std::max(max_err, double(std::fabs(got[size_t(t) * stride + e] -
                                                     q[size_t(t) * heads * hd + e])));
      for (int e = 0; e < kv_heads * hd; ++e)
        max_err = std::max(max_err, double(std::fabs(got[size_t(t) * stride + heads * hd + e] -
                                                     k[size_t(t) * kv_heads * hd + e])));
      for (int e = (heads + kv_heads) * hd; e < stride; ++e)
        REQUIRE(got[size_t(t) * stride + e] == x[size_t(t) * stride + e]);
    }
    INFO("head_dim " << hd << " max abs err " << max_err);
    REQUIRE(max_err < 1e-4);
  }
}

TEST_CASE("swiglu_cuda equals swiglu_ref", "[gpu]") {
  CudaContext ctx;
  for (int inter : {1, 11, 1376}) {
    const int n = 3;
    const auto gu = randn(size_t(n) * 2 * inter, 4.0f);
    std::vector<float> g(size_t(n) * inter), u(size_t(n) * inter), ref(size_t(n) * inter);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < inter; ++j) {
        g[size_t(i) * inter + j] = gu[size_t(i) * 2 * inter + j];
        u[size_t(i) * inter + j] = gu[size_t(i) * 2 * inter + inter + j];
      }
    swiglu_ref(g.data(), u.data(), int64_t(g.size()), ref.data());
    auto d = upload(gu);
    auto out = poisoned(ref.size() * 2);
    swiglu_cuda(ctx, DType::kBF16, d.as<float>(), n, inter, out.get());
    ctx.synchronize();
    const double e = rel_err(from_bf16(download<uint16_t>(out, ref.size())), ref);
    INFO("inter " << inter << " rel err " << e);
    REQUIRE(e < kTolBf16);
  }
  // Columns in interleave_gate_up's order: groups of 4 gate values, then their 4 up values.
  for (int inter : {4, 1376}) {
    const int n = 3;
    const auto g = randn(size_t(n) * inter, 4.0f), u = randn(size_t(n) * inter, 4.0f);
    std::vector<float> gu(size_t(n) * 2 * inter), ref(g.size());
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < inter; ++j) {
        const size_t at = size_t(i) * 2 * inter + size_t(j / 4) * 8 + j % 4;
        gu[at] = g[size_t(i) * inter + j];
        gu[at + 4] = u[size_t(i) * inter + j];
      }
    swiglu_ref(g.data(), u.data(), int64_t(g.size()), ref.data());
    auto d = upload(gu);
    auto out = poisoned(ref.size() * 2);
    swiglu_cuda(ctx, DType::kBF16, d.as<float>(), n, inter, out.get(), /*interleaved=*/true);
    ctx.synchronize();
    const double e = rel_err(from_bf16(download<uint16_t>(out, ref.size())), ref);
    INFO("interleaved, inter " << inter << " rel err " << e);
    REQUIRE(e < kTolBf16);
  }
}

TEST_CASE("nll_cuda equals nll_ref", "[gpu]") {
  CudaContext ctx;
  for (int vocab : {2, 257, 32000, 128256}) {
    const int n = 4;
    const auto logits = randn(size_t(n) * vocab, 5.0f);
    std::vector<int> targets = {0, vocab - 1, -1, vocab / 2};
    auto dl = upload(logits);
    auto dt = upload(targets);
    auto out = poisoned(size_t(n) * 4);
    nll_cuda(ctx, dl.as<float>(), dt.as<int>(), n, vocab, out.as<float>());
    ctx.synchronize();
    const auto got = download<float>(out, n);
    for (int i = 0; i < n; ++i) {
      const double ref =
          targets[i] < 0 ? 0.0 : nll_ref(logits.data() + size_t(i) * vocab, vocab, targets[i]);
      REQUIRE(got[i] == Approx(ref).margin(1e-4).epsilon(1e-5));
    }
  }
}

// One step of (sequence, tokens) chunks, in row order, after len[s] tokens of each sequence:
// random q/k/v rows appended to the GPU dense cache and attended (outputs poisoned first), the
// same through the CPU reference over fp16-rounded q, k, v. With inv_freq (host, and d_inv on
// the device), the rows go through rope_append (RoPE fused with the append in decode steps)
// and the reference applies rope_ref; the rows left in device memory must be rope_ref's too.
// Returns the worst relative error of any chunk and advances len; with check false the step
// only fills both caches (no reference attention: long prefills) and returns 0.
static double dense_step_err(const CudaContext& ctx, DenseKvCacheCuda& cache, DenseKvCacheRef& ref,
                             const std::vector<std::pair<int, int>>& chunks, bool decode,
                             std::vector<int>& len, int heads, int kv_heads, int hd, DType act,
                             const std::vector<float>* inv_freq = nullptr,
                             const float* d_inv = nullptr, bool check = true) {
  const int QD = heads * hd, KD = kv_heads * hd, stride = QD + 2 * KD;
  StepLayout step;
  std::vector<int> pos, seq;
  int T = 0;
  for (auto [s, n] : chunks) {
    step.chunks.push_back({s, len[s], n, T});
    for (int i = 0; i < n; ++i) pos.push_back(len[s] + i), seq.push_back(s);
    T += n;
  }
  step.n_tokens = T;
  step.decode = decode;
  const auto x = randn(size_t(T) * stride);
  auto xr = x;  // what the reference sees: x after RoPE when inv_freq is given
  if (inv_freq)
    for (int r = 0; r < T; ++r) {
      float* row = xr.data() + size_t(r) * stride;
      rope_ref(row, &pos[r], 1, heads, hd, inv_freq->data());
      rope_ref(row + QD, &pos[r], 1, kv_heads, hd, inv_freq->data());
    }
  std::vector<int> ints = pos;
  ints.insert(ints.end(), seq.begin(), seq.end());
  for (auto& c : step.chunks) ints.push_back(c.start);
  for (auto& c : step.chunks) ints.push_back(c.seq);
  const DeviceBuffer d_x = upload(x), d_ints = upload(ints);
  step.pos = d_ints.as<int>();
  step.seq = step.pos + T;
  step.chunk_start = step.seq + T;
  step.chunk_seq = step.chunk_start + int(chunks.size());
  const QkvView view{d_x.as<float>(), stride, 0, QD, QD + KD};
  const DeviceBuffer d_out = poisoned(size_t(T) * QD * 2);
  if (inv_freq)
    cache.rope_append(0, view, step, d_inv);
  else
    cache.append(0, view, step);
  cache.attend(0, view, step, act, d_out.get());
  ctx.synchronize();
  const auto got16 = download<uint16_t>(d_out, size_t(T) * QD);
  const auto x_after = download<float>(d_x, x.size());
  size_t off = 0;  // values of x left unlike rope_ref's (NaN counts)
  for (size_t e = 0; e < x.size(); ++e) off += !(std::fabs(x_after[e] - xr[e]) < 1e-4f);
  REQUIRE(off == 0);
  double worst = 0;
  for (const auto& c : step.chunks) {
    std::vector<float> q(size_t(c.count) * QD), k(size_t(c.count) * KD), v(size_t(c.count) * KD);
    for (int i = 0; i < c.count; ++i) {
      const float* row = xr.data() + size_t(c.row + i) * stride;
      for (int e = 0; e < QD; ++e) q[size_t(i) * QD + e] = round_fp16(row[e]);
      std::copy_n(row + QD, KD, k.data() + size_t(i) * KD);
      std::copy_n(row + QD + KD, KD, v.data() + size_t(i) * KD);
    }
    ref.append(0, c.seq, k.data(), v.data(), c.count);
    len[c.seq] += c.count;
    if (!check) continue;
    std::vector<float> want(size_t(c.count) * QD), got(size_t(c.count) * QD);
    ref.attend(0, c.seq, q.data(), c.count, want.data());
    for (size_t e = 0; e < got.size(); ++e) {
      const uint16_t h = got16[size_t(c.row) * QD + e];
      got[e] = act == DType::kBF16 ? bf16_to_float(h) : fp16_to_float(h);
    }
    worst = std::max(worst, rel_err(got, want));
  }
  return worst;
}

// The dense cache's decode attention, flash decoding (the default) and cuBLAS GEMMs
// (fp16-cublas), against attention_ref over the same fp16-rounded K/V: sequences of different
// lengths, prefill and decode steps, GQA ratios 1, 2, 4, 8; rows given after RoPE (append), or
// before it (rope_append: one fused kernel in decode steps). The long prompts give the flash
// kernel several splits, partial tiles and a cache whose end is not a tile boundary.
TEST_CASE("dense decode attention (flash and cuBLAS) equals attention_ref", "[gpu]") {
  CudaContext ctx;
  struct Setup {
    std::vector<int> prompt;  // prefill lengths per sequence
    int max_tokens;
  };
  const std::vector<Setup> setups = {{{1, 37, 129}, 300}, {{1100, 1, 4200, 63}, 4213}};
  for (bool cublas : {false, true})
    for (size_t si = 0; si < setups.size(); ++si)
      for (bool rope : {false, true})
        for (int hd : {64, 128})
          for (auto [heads, kv_heads] : {std::pair{8, 8}, {8, 2}, {16, 2}, {16, 4}}) {
            if (si == 1 && (rope || cublas)) continue;  // the long setup is for the flash kernel
            const Setup& su = setups[si];
            std::vector<float> inv(hd / 2);
            for (int i = 0; i < hd / 2; ++i) inv[i] = float(std::pow(10000.0, -2.0 * i / hd));
            const DeviceBuffer d_inv = upload(inv);
            const int n_seqs = int(su.prompt.size());
            KvShape shape{1, n_seqs, heads, kv_heads, hd};
            DenseKvCacheCuda cache(ctx, shape, su.max_tokens, cublas);
            DenseKvCacheRef ref(shape, /*round_to_fp16=*/true);
            std::vector<int> len(n_seqs, 0);
            double worst = 0;
            for (int step_i = 0; step_i < 4; ++step_i) {
              // Step 0: prefill of every sequence; then three decode steps for all of them.
              std::vector<std::pair<int, int>> chunks;
              for (int s = 0; s < n_seqs; ++s)
                chunks.push_back({s, step_i == 0 ? su.prompt[s] : 1});
              // The long setup's prefill is not checked (its reference would take minutes).
              worst =
                  std::max(worst, dense_step_err(ctx, cache, ref, chunks, step_i > 0, len, heads,
                                                 kv_heads, hd, DType::kF16, rope ? &inv : nullptr,
                                                 d_inv.as<float>(), si == 0 || step_i > 0));
            }
            INFO((cublas ? "cuBLAS" : "flash")
                 << " setup " << si << " rope " << rope << " head_dim " << hd << " heads " << heads
                 << "/" << kv_heads << " worst rel err " << worst);
            std::printf("dense %s attention, setup %zu%s hd=%d heads=%d/%d: worst rel err %.2e\n",
                        cublas ? "cuBLAS" : "flash", si, rope ? " (rope_append)" : "", hd, heads,
                        kv_heads, worst);
            REQUIRE(worst < kTolFp16Attn);
          }
}

namespace {

// One prefill step: (sequence, tokens) per chunk, in row order.
using PrefillStep = std::vector<std::pair<int, int>>;

// Runs prefill steps through DenseKvCacheCuda (append, then attend: the fused prefill kernel for
// head_dim 64 and 128, the cuBLAS path otherwise) and returns the worst relative error of any
// chunk against attention_ref. The cache is filled with NaN first, so a key read past a row's
// position (or an unwritten output, poisoned too) fails the comparison.
double prefill_worst_err(const CudaContext& ctx, int hd, int heads, int kv_heads,
                         const std::vector<PrefillStep>& steps, DType act) {
  int n_seqs = 0, max_tokens = 0;
  {
    std::vector<int> len;
    for (const auto& st : steps)
      for (auto [s, n] : st) {
        if (s >= int(len.size())) len.resize(s + 1, 0);
        len[s] += n;
      }
    n_seqs = int(len.size());
    for (int l : len) max_tokens = std::max(max_tokens, l);
  }
  max_tokens += 1;  // not a multiple of the key tile: the last tile must stop at the cache end
  const KvShape shape{1, n_seqs, heads, kv_heads, hd};
  DenseKvCacheCuda cache(ctx, shape, max_tokens);
  // Poison the whole cache (a test's liberty: attention reads it, nothing else does here).
  const size_t cache_bytes = size_t(n_seqs) * kv_heads * max_tokens * hd * 2;
  KVCOMP_CUDA_CHECK(cudaMemset(const_cast<void*>(cache.k_data()), 0xff, cache_bytes));
  KVCOMP_CUDA_CHECK(cudaMemset(const_cast<void*>(cache.v_data()), 0xff, cache_bytes));
  DenseKvCacheRef ref(shape, /*round_to_fp16=*/true);
  std::vector<int> len(n_seqs, 0);
  double worst = 0;
  for (const auto& st : steps)
    worst =
        std::max(worst, dense_step_err(ctx, cache, ref, st, false, len, heads, kv_heads, hd, act));
  return worst;
}

std::string prefill_steps_string(const std::vector<PrefillStep>& steps) {
  std::string s;
  for (const auto& st : steps) {
    s += "[";
    for (auto [q, n] : st) s += " seq" + std::to_string(q) + ":" + std::to_string(n);
    s += " ]";
  }
  return s;
}

}  // namespace

TEST_CASE("fused prefill attention equals attention_ref", "[gpu]") {
  CudaContext ctx;
  std::vector<std::vector<PrefillStep>> cases;
  for (int n : {1, 15, 64, 129, 1000}) cases.push_back({{{0, n}}});   // one prompt
  cases.push_back({{{0, 100}}, {{0, 37}}});                           // a second chunk, start 100
  cases.push_back({{{0, 129}, {1, 15}}});                             // two sequences, one step
  cases.push_back({{{0, 70}, {1, 3}}, {{1, 200}, {0, 1}, {2, 64}}});  // mixed: starts 0, 3, 70
  for (int hd : {64, 128})
    for (auto [heads, kv_heads] : {std::pair{8, 8}, {32, 8}, {8, 1}})
      for (const auto& steps : cases) {
        const double e = prefill_worst_err(ctx, hd, heads, kv_heads, steps, DType::kF16);
        INFO("head_dim " << hd << " heads " << heads << "/" << kv_heads << " steps "
                         << prefill_steps_string(steps) << " rel err " << e);
        std::printf("prefill attention hd=%d heads=%d/%d %s: rel err %.2e\n", hd, heads, kv_heads,
                    prefill_steps_string(steps).c_str(), e);
        REQUIRE(e < kTolPrefillF16);
      }
}

TEST_CASE("fused prefill attention writes bf16 activations", "[gpu]") {
  CudaContext ctx;
  for (int hd : {64, 128}) {
    const std::vector<PrefillStep> steps = {{{0, 129}, {1, 1}}, {{0, 37}}};
    const double e = prefill_worst_err(ctx, hd, 32, 8, steps, DType::kBF16);
    INFO("head_dim " << hd << " rel err " << e);
    std::printf("prefill attention bf16 hd=%d heads=32/8: rel err %.2e\n", hd, e);
    REQUIRE(e < kTolPrefillBf16);
  }
}

TEST_CASE("cuBLAS prefill attention (head_dim without a fused kernel) equals attention_ref",
          "[gpu]") {
  CudaContext ctx;
  for (auto [heads, kv_heads] : {std::pair{8, 8}, {8, 2}}) {
    const std::vector<PrefillStep> steps = {{{0, 129}, {1, 15}}, {{0, 37}}};
    const double e = prefill_worst_err(ctx, 96, heads, kv_heads, steps, DType::kF16);
    INFO("head_dim 96 heads " << heads << "/" << kv_heads << " rel err " << e);
    std::printf("prefill attention (cuBLAS) hd=96 heads=%d/%d: rel err %.2e\n", heads, kv_heads, e);
    REQUIRE(e < kTolFp16Attn);
  }
}

TEST_CASE("linear_cuda (decode-shaped kernel and cuBLAS) equals matmul_ref", "[gpu]") {
  CudaContext ctx;
  for (int n : {1, 2, 5, 8, 9, 33})
    for (auto [in, out] : {std::pair{8, 3}, {64, 130}, {4096, 257}, {11008, 64}}) {
      const auto x = randn(size_t(n) * in), w = randn(size_t(out) * in, 0.05f);
      const auto xb = to_bf16(x), wb = to_bf16(w);
      auto dx = upload(xb);
      auto dw = upload(wb);
      const auto y0 = randn(size_t(n) * out);
      auto dy = upload(y0);  // beta = 1 accumulates into it
      linear_cuda(ctx, DType::kBF16, dx.get(), dw.get(), n, in, out, dy.as<float>(), 1.0f);
      ctx.synchronize();
      std::vector<float> ref(size_t(n) * out);
      matmul_ref(from_bf16(xb).data(), from_bf16(wb).data(), n, in, out, ref.data());
      for (size_t i = 0; i < ref.size(); ++i) ref[i] += y0[i];
      const double e = rel_err(download<float>(dy, ref.size()), ref);
      INFO("n " << n << " in " << in << " out " << out << " rel err " << e);
      REQUIRE(e < 1e-5);
    }
}

// The decode kernel over whole and partial groups of 128 16-byte chunks per row (in / 8 = 1, 129,
// 512, 1376 chunks) and more rows than one wave of blocks; beta 0.5.
TEST_CASE("gemv_cuda equals matmul_ref over partial chunk groups", "[gpu]") {
  CudaContext ctx;
  for (int n : {1, 3, 8})
    for (auto [in, out] : {std::pair{8, 5}, {1032, 4099}, {4096, 9001}, {11008, 131}}) {
      const auto xb = to_bf16(randn(size_t(n) * in));
      const auto wb = to_bf16(randn(size_t(out) * in, 0.05f));
      auto dx = upload(xb);
      auto dw = upload(wb);
      const auto y0 = randn(size_t(n) * out);
      auto dy = upload(y0);
      gemv_cuda(ctx, DType::kBF16, dx.get(), dw.get(), n, in, out, dy.as<float>(), 0.5f);
      ctx.synchronize();
      std::vector<float> ref(size_t(n) * out);
      matmul_ref(from_bf16(xb).data(), from_bf16(wb).data(), n, in, out, ref.data());
      for (size_t i = 0; i < ref.size(); ++i) ref[i] += 0.5f * y0[i];
      const double e = rel_err(download<float>(dy, ref.size()), ref);
      INFO("n " << n << " in " << in << " out " << out << " rel err " << e);
      REQUIRE(e < 1e-5);
    }
}

// The gate/up GEMV with SwiGLU applied by each block (weights in interleave_gate_up's order)
// against matmul_ref of the gate and up halves and swiglu_ref.
TEST_CASE("gemv_swiglu_cuda equals matmul_ref + swiglu_ref", "[gpu]") {
  CudaContext ctx;
  for (int n : {1, 3, 8})
    for (auto [in, inter] : {std::pair{64, 4}, {1032, 172}, {4096, 1376}}) {
      const auto xb = to_bf16(randn(size_t(n) * in));
      const auto gate = to_bf16(randn(size_t(inter) * in, 0.1f));
      const auto up = to_bf16(randn(size_t(inter) * in, 0.1f));
      std::vector<uint16_t> both(gate.size() * 2);
      interleave_gate_up(gate.data(), up.data(), inter, in, both.data());
      auto dx = upload(xb);
      auto dw = upload(both);
      auto dm = poisoned(size_t(n) * inter * 2);
      gemv_swiglu_cuda(ctx, DType::kBF16, dx.get(), dw.get(), n, in, inter, dm.get());
      ctx.synchronize();
      std::vector<float> g(size_t(n) * inter), u(g.size()), ref(g.size());
      matmul_ref(from_bf16(xb).data(), from_bf16(gate).data(), n, in, inter, g.data());
      matmul_ref(from_bf16(xb).data(), from_bf16(up).data(), n, in, inter, u.data());
      swiglu_ref(g.data(), u.data(), int64_t(g.size()), ref.data());
      const double e = rel_err(from_bf16(download<uint16_t>(dm, ref.size())), ref);
      INFO("n " << n << " in " << in << " inter " << inter << " rel err " << e);
      REQUIRE(e < kTolBf16);
    }
}
