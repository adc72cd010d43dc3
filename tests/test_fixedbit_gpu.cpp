// The GPU fixed-bit cache (compress/kv_cache_fixedbit_cuda.h) against the CPU reference: the
// e4m3 conversion against CUDA's own, the stored blocks and the dequantized values bit for bit,
// attention within fp16 rounding, and perplexity of the demo model per mode. Label: gpu.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "compress/fixedbit.h"
#include "compress/kv_cache_fixedbit_cuda.h"
#include "compress/kv_cache_fixedbit_ref.h"
#include "models/llama_cpu.h"
#include "models/llama_cuda.h"
#include "models/model_files.h"
#include "models/perplexity.h"
#include "runtime/cuda_context.h"
#include "runtime/half.h"
#include "runtime/tokenizer.h"
#include "tests/catch.h"
#include "tests/demo_text.h"
#include "tests/gpu_test_util.h"

using namespace kvcomp;
using namespace kvcomp::test;

namespace {

// Attention of the dequantize-then-cuBLAS path against attention_ref over the same values: q
// and the probabilities are rounded to fp16 on the GPU.
constexpr double kTolFp16Attn = 3e-3;
// GPU (bf16 activations) against CPU (fp32) perplexity, same cache format.
constexpr double kTolPplGpu = 0.005;

const KvMode kModes[] = {KvMode::kKivi2, KvMode::kKivi4, KvMode::kInt8, KvMode::kFp8};

}  // namespace

TEST_CASE("e4m3 on the GPU: the CPU conversion and CUDA's own, bit for bit", "[gpu]") {
  CudaContext ctx;
  // Every code's value and the midpoints between neighbours (ties), each nudged one ulp either
  // way, both signs; then values spread over every binade; then Inf and out-of-range values.
  std::vector<float> x;
  for (int c = 0; c < 0x7f; ++c) {
    const float a = e4m3_to_float(uint8_t(c));
    x.push_back(a);
    if (c < 0x7e) {
      const float mid = 0.5f * (a + e4m3_to_float(uint8_t(c + 1)));
      x.insert(x.end(), {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f)});
    }
  }
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<float> mant(1.0f, 2.0f);
  std::uniform_int_distribution<int> expo(-140, 12);
  for (int i = 0; i < 1 << 20; ++i) x.push_back(std::ldexp(mant(rng), expo(rng)));
  x.insert(x.end(), {448.0f, 464.0f, 479.9f, 480.0f, 1e30f, INFINITY, 0.0f, 1e-45f});
  const size_t n = x.size();
  for (size_t i = 0; i < n; ++i) x.push_back(-x[i]);
  DeviceBuffer dx = upload(x), ours(x.size(), "e4m3 codes"), theirs(x.size(), "e4m3 codes");
  e4m3_encode_cuda(ctx, dx.as<float>(), int64_t(x.size()), ours.as<uint8_t>(),
                   theirs.as<uint8_t>());
  ctx.synchronize();
  const auto a = download<uint8_t>(ours, x.size());
  const auto b = download<uint8_t>(theirs, x.size());
  size_t bad_cpu = 0, bad_cuda = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    bad_cpu += a[i] != float_to_e4m3(x[i]);
    bad_cuda += a[i] != b[i];
  }
  std::printf("e4m3: %zu values, %zu differ from the CPU, %zu from __nv_cvt_float_to_fp8\n",
              x.size(), bad_cpu, bad_cuda);
  REQUIRE(bad_cpu == 0);
  REQUIRE(bad_cuda == 0);
}

TEST_CASE("GPU fixed-bit cache: blocks and dequantized values equal the CPU's bit for bit",
          "[gpu]") {
  CudaContext ctx;
  for (KvMode mode : kModes)
    for (int hd : {64, 128})
      for (int group : {1, 4}) {
        const int n_layers = 2, n_kv = 2, n_seqs = 3, heads = n_kv * group, max_tokens = 300;
        const int QD = heads * hd, KD = n_kv * hd, stride = QD + 2 * KD;
        KvOptions o;
        o.mode = mode;
        o.block_k = 16;
        o.block_v = 32;
        o.window_k = hd == 64 ? 0 : 24;
        o.window_v = hd == 64 ? 8 : 50;
        const KvShape shape{n_layers, n_seqs, heads, n_kv, hd};
        FixedBitCacheCuda gpu(ctx, shape, max_tokens, o);
        FixedBitCacheRef cpu(shape, o);
        INFO(kv_mode_name(mode) << " head_dim " << hd << " GQA " << group);
        std::mt19937_64 rng(uint64_t(hd * 10 + group));
        std::normal_distribution<float> g(0.0f, 1.0f);
        std::vector<int> len(n_seqs, 0);
        const int prompt[n_seqs] = {1, 37, 129};
        double worst_attn = 0;
        for (int step_i = 0; step_i <= 50; ++step_i) {
          // Step 0: every prompt at once; then decode steps, sequence 1 taking 3 tokens now
          // and then.
          StepLayout step;
          std::vector<int> pos, seq;
          int T = 0;
          for (int s = 0; s < n_seqs; ++s) {
            const int cnt = step_i == 0 ? prompt[s] : (s == 1 && step_i % 10 == 0 ? 3 : 1);
            step.chunks.push_back({s, len[s], cnt, T});
            for (int i = 0; i < cnt; ++i) pos.push_back(len[s] + i), seq.push_back(s);
            T += cnt;
          }
          step.n_tokens = T;
          step.decode = T == n_seqs;
          std::vector<int> ints = pos;
          ints.insert(ints.end(), seq.begin(), seq.end());
          for (auto& c : step.chunks) ints.push_back(c.start);
          for (auto& c : step.chunks) ints.push_back(c.seq);
          DeviceBuffer d_ints = upload(ints);
          step.pos = d_ints.as<int>();
          step.seq = step.pos + T;
          step.chunk_start = step.seq + T;
          step.chunk_seq = step.chunk_start + n_seqs;
          gpu.begin_step(step);
          for (int l = 0; l < n_layers; ++l) {
            // K-like rows (channel offsets and outlier channels) and V-like rows.
            std::vector<float> x(size_t(T) * stride);
            for (int t = 0; t < T; ++t)
              for (int e = 0; e < stride; ++e) {
                float& y = x[size_t(t) * stride + e];
                y = g(rng);
                if (e >= QD && e < QD + KD)
                  y = (e % 13 == 5 ? 9.0f : 1.0f) * y + 0.2f * float(e % 7);
              }
            DeviceBuffer d_x = upload(x);
            DeviceBuffer d_out(size_t(T) * QD * 2, "attention output");
            const QkvView view{d_x.as<float>(), stride, 0, QD, QD + KD};
            gpu.append(l, view, step);
            gpu.attend(l, view, step, DType::kF16, d_out.get());
            ctx.synchronize();
            const auto got16 = download<uint16_t>(d_out, size_t(T) * QD);
            for (const auto& c : step.chunks) {
              std::vector<float> q(size_t(c.count) * QD), k(size_t(c.count) * KD), v(k.size());
              for (int i = 0; i < c.count; ++i) {
                const float* row = x.data() + size_t(c.row + i) * stride;
                for (int e = 0; e < QD; ++e) q[size_t(i) * QD + e] = round_fp16(row[e]);
                std::copy_n(row + QD, KD, k.data() + size_t(i) * KD);
                std::copy_n(row + QD + KD, KD, v.data() + size_t(i) * KD);
              }
              cpu.append(l, c.seq, k.data(), v.data(), c.count);
              std::vector<float> want(q.size()), got(q.size());
              cpu.attend(l, c.seq, q.data(), c.count, want.data());
              for (size_t e = 0; e < got.size(); ++e)
                got[e] = fp16_to_float(got16[size_t(c.row) * QD + e]);
              worst_attn = std::max(worst_attn, rel_err(got, want));
            }
          }
          for (const auto& c : step.chunks) len[c.seq] += c.count;
          gpu.commit(step);
          cpu.commit();
          for (int s = 0; s < n_seqs; ++s)
            for (int p = 0; p < 2; ++p)
              REQUIRE(gpu.done(KvPart(p), s) == cpu.done(KvPart(p), 0, s));
          // What attention reads, and every stored block, after the prefill and every 10 steps.
          if (step_i % 10 != 0) continue;
          for (int l = 0; l < n_layers; ++l)
            for (int s = 0; s < n_seqs; ++s) {
              std::vector<float> k, v;
              REQUIRE(gpu.read(l, s, k, v));
              REQUIRE(k == cpu.values(KvPart::kK, l, s));
              REQUIRE(v == cpu.values(KvPart::kV, l, s));
              for (int p = 0; p < 2; ++p)
                for (int h = 0; h < n_kv; ++h)
                  for (int b = 0; b < cpu.n_blocks(KvPart(p), l, s); ++b) {
                    const auto bytes = gpu.block(KvPart(p), l, s, h, b);
                    REQUIRE(bytes.size() == size_t(cpu.block_bytes(KvPart(p))));
                    REQUIRE(std::memcmp(bytes.data(), cpu.block(KvPart(p), l, s, h, b),
                                        bytes.size()) == 0);
                  }
            }
        }
        const KvStats sg = gpu.stats(), sc = cpu.stats();
        std::printf(
            "%-5s hd %3d GQA %d: %llu K + %llu V blocks identical; attention rel err "
            "%.2e\n",
            kv_mode_name(mode), hd, group, static_cast<unsigned long long>(sg.k.n_blocks),
            static_cast<unsigned long long>(sg.v.n_blocks), worst_attn);
        REQUIRE(sg.k.n_blocks > 0);
        REQUIRE(sg.v.n_blocks > 0);
        REQUIRE(sg.total_bytes() == sc.total_bytes());
        REQUIRE(sg.k.payload == sc.k.payload);
        REQUIRE(sg.v.params == sc.v.params);
        REQUIRE(gpu.bytes() == cpu.bytes());
        REQUIRE(worst_attn < kTolFp16Attn);
      }
}

TEST_CASE("GPU perplexity with each fixed-bit baseline matches the CPU's (demo model)", "[gpu]") {
  const ModelFiles files = open_model_files(default_model_dir());
  auto cpu = make_cpu_engine(files);
  auto gpu = make_cuda_engine(files);
  const std::vector<int> ids = heldout_ids(files, 30000);
  PerplexityOptions o;
  o.ctx = 256;
  o.max_windows = 2;
  o.batch = 2;
  o.prefill = perplexity_default_prefill(o.ctx);
  // Small windows, so that K and V blocks form in the prefill and during decoding.
  o.kv.window_k = 32;
  o.kv.window_v = 64;
  for (KvMode mode : kModes) {
    o.kv.mode = mode;
    const auto rc = perplexity(*cpu, ids, o, nullptr);
    const KvStats sc = cpu->kv_stats();
    const auto rg = perplexity(*gpu, ids, o, nullptr);
    const KvStats sg = gpu->kv_stats();
    std::printf(
        "%-5s ctx 256, 2 windows: cpu %.4f gpu %.4f (%+.3f%%); K %.3f V %.3f bits, ratio "
        "%.2fx\n",
        kv_mode_name(mode), rc.ppl, rg.ppl, 100.0 * (rg.ppl / rc.ppl - 1), sg.k_bits(), sg.v_bits(),
        sg.ratio());
    REQUIRE(rg.tokens == rc.tokens);
    REQUIRE(std::fabs(rg.ppl / rc.ppl - 1.0) < kTolPplGpu);
    REQUIRE(sg.k.n_blocks == sc.k.n_blocks);
    REQUIRE(sg.v.n_blocks == sc.v.n_blocks);
    REQUIRE(sg.k.n_blocks > 0);
    REQUIRE(sg.v.n_blocks > 0);
    REQUIRE(sg.total_bytes() == sc.total_bytes());
    REQUIRE(rg.kv.compressed);
    REQUIRE(gpu->kv_bytes() == int64_t(sg.total_bytes()));
  }
}
