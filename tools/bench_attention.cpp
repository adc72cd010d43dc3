// kvcomp_bench_attention: decode attention alone, fp16 cache + cuBLAS (the baseline) against
// the fused kernel over the compressed cache (and the unfused decompress-then-cuBLAS path), on
// K/V with real statistics: the demo model's own K and V over its held-out text, laid out as
// n_kv_heads heads of ctx tokens. Everything is measured in one run: CUDA events, warm-up,
// median of --reps with L2 flushed before each, device copy bandwidth alongside.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "compress/attention_kvcomp.h"
#include "models/model_files.h"
#include "runtime/cuda_check.h"
#include "runtime/error.h"
#include "runtime/half.h"
#include "tools/attention_testbed.h"
#include "tools/real_kv.h"

using namespace kvcomp;
using namespace kvcomp::testbed;

namespace {

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  for (std::string it; std::getline(ss, it, ',');) {
    int mult = 1;
    if (!it.empty() && (it.back() == 'k' || it.back() == 'K')) mult = 1024, it.pop_back();
    out.push_back(std::stoi(it) * mult);
  }
  return out;
}

struct Timer {
  const CudaContext& ctx;
  DeviceBuffer flush;
  cudaEvent_t a, b;
  explicit Timer(const CudaContext& c) : ctx(c), flush(size_t(256) << 20, "L2 flush buffer") {
    KVCOMP_CUDA_CHECK(cudaEventCreate(&a));
    KVCOMP_CUDA_CHECK(cudaEventCreate(&b));
  }
  ~Timer() {
    cudaEventDestroy(a);
    cudaEventDestroy(b);
  }
  // Median milliseconds of f over reps runs (after 3 warm-ups), L2 flushed before each.
  template <typename F>
  double median_ms(int reps, F&& f) {
    for (int i = 0; i < 3; ++i) f();
    std::vector<double> t;
    for (int i = 0; i < reps; ++i) {
      KVCOMP_CUDA_CHECK(cudaMemsetAsync(flush.get(), i & 0xff, flush.bytes(), ctx.stream()));
      KVCOMP_CUDA_CHECK(cudaEventRecord(a, ctx.stream()));
      f();
      KVCOMP_CUDA_CHECK(cudaEventRecord(b, ctx.stream()));
      KVCOMP_CUDA_CHECK(cudaEventSynchronize(b));
      float ms = 0;
      KVCOMP_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
      t.push_back(ms);
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  }
};

double rel_err(const std::vector<float>& a, const std::vector<float>& b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Decode attention: fp16 + cuBLAS vs fused KVComp, on real K/V statistics"};
  std::string ctxs = "4k,16k,32k,64k,128k", batches = "1,8", kvh = "32,8", json_out;
  int heads = 32, reps = 30;
  std::string model;
  ImageOptions io;
  bool check_out = true;
  app.add_option("--ctx", ctxs, "Context lengths")->capture_default_str();
  app.add_option("--batch", batches, "Batch sizes")->capture_default_str();
  app.add_option("--kv-heads", kvh, "KV head counts")->capture_default_str();
  app.add_option("--heads", heads, "Query heads")->capture_default_str();
  app.add_option("--reps", reps, "Timed runs per variant (median)")->capture_default_str();
  app.add_option("--model", model, "Model whose K/V statistics are used (default: demo)");
  app.add_option("--json", json_out, "Write the results as JSON to this file");
  app.add_option("--eb-k", io.codec.eb_k)->capture_default_str();
  app.add_option("--eb-v", io.codec.eb_v)->capture_default_str();
  app.add_option("--block-k", io.codec.block_k)->capture_default_str();
  app.add_option("--block-v", io.codec.block_v)->capture_default_str();
  app.add_option("--window-k", io.window_k)->capture_default_str();
  app.add_option("--window-v", io.window_v)->capture_default_str();
  app.add_option("--max-code-len", io.codec.max_code_len)->capture_default_str();
  app.add_flag("!--no-check", check_out, "Skip the comparison with the CPU reference");
  CLI11_PARSE(app, argc, argv);
  try {
    CudaContext ctx;
    const auto dir = model.empty() ? default_model_dir() : std::filesystem::path(model);
    const RealKv real = load_real_kv(dir, Device::kCuda);
    const int hd = real.head_dim;
    std::printf("K/V statistics: %d streams (layer x KV head) of %lld tokens from %s\n",
                real.n_streams(), (long long)real.tokens, dir.string().c_str());
    // Device copy bandwidth, the ceiling of every memory-bound figure below.
    Timer timer(ctx);
    DeviceBuffer c1(size_t(1) << 31, "copy test"), c2(size_t(1) << 31, "copy test");
    const double copy_ms = timer.median_ms(10, [&] {
      KVCOMP_CUDA_CHECK(
          cudaMemcpyAsync(c2.get(), c1.get(), c1.bytes(), cudaMemcpyDeviceToDevice, ctx.stream()));
    });
    const double copy_gbs = 2.0 * c1.bytes() / (copy_ms * 1e-3) / 1e9;
    c1 = DeviceBuffer();
    c2 = DeviceBuffer();
    const auto& pr = ctx.props();
    int clock_khz = 0;
    cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, 0);
    const double instr_rate =
        double(pr.multiProcessorCount) * 4 * 32 * clock_khz * 1e3;  // thread-instr/s
    std::printf(
        "%s: copy %.0f GB/s (read+write); %d SMs at %.2f GHz: %.1f T thread-instructions/s\n\n",
        pr.name, copy_gbs, pr.multiProcessorCount, clock_khz / 1e6, instr_rate / 1e12);
    std::printf(
        "| kv heads | ctx | batch | cuBLAS us | cuBLAS GB/s | qK^T us | fused us | fused GB/s "
        "(%% copy) | Gsym/s | instr/sym | speedup | bits/val | rel err |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    nlohmann::json rows = nlohmann::json::array();
    for (int KV : parse_list(kvh))
      for (int C : parse_list(ctxs))
        for (int B : parse_list(batches)) {
          // One sequence of data (distinct copies per batch entry): head h reads stream h % n
          // from an offset that differs per head, wrapping around the held-out text.
          HostKv kv;
          kv.n_seqs = B;
          kv.n_unique = 1;
          kv.n_kv_heads = KV;
          kv.head_dim = hd;
          kv.len.assign(B, C);
          for (int h = 0; h < KV; ++h) {
            std::vector<float> k(size_t(C) * hd), v(size_t(C) * hd);
            real_kv_head(real, RealKvPart::kK, h, C, k.data());
            real_kv_head(real, RealKvPart::kV, h, C, v.data());
            kv.k.push_back(std::move(k));
            kv.v.push_back(std::move(v));
          }
          KvcompImage img = build_kvcomp_image(kv, heads, io);
          DenseImage dense = build_dense_image(kv);
          std::mt19937_64 rng(C + B + KV);
          std::normal_distribution<float> nd(0.0f, 1.0f);
          std::vector<float> q(size_t(B) * heads * hd);
          for (auto& x : q) x = nd(rng);
          DeviceBuffer dq(q.size() * 4, "queries"), dout(q.size() * 2, "output");
          dq.upload(q.data(), q.size() * 4);
          // Baseline: the runtime's fp16 cuBLAS decode attention.
          KvShape shape{1, B, heads, KV, hd};
          StepLayout step;
          for (int s = 0; s < B; ++s) step.chunks.push_back({s, C - 1, 1, s});
          step.n_tokens = B;
          step.decode = true;
          step.chunk_start = dense.chunk_start.as<int>();
          step.chunk_seq = dense.chunk_seq.as<int>();
          const QkvView view{dq.as<float>(), int64_t(heads) * hd, 0, 0, 0};
          dense.args.tokens_cap = dense.cap;
          DeviceBuffer q16, sc, pb, o32, ptrs;
          const double cublas_ms = timer.median_ms(reps, [&] {
            dense_attention_cuda(ctx, shape, dense.args, view, step, DType::kF16, dout.get(), q16,
                                 sc, pb, o32, ptrs);
          });
          // q.K^T alone, as cuBLAS runs it inside the baseline.
          const float scale = 1.0f / std::sqrt(float(hd)), zero = 0.0f;
          const int G = heads / KV;
          const double qk_ms = timer.median_ms(reps, [&] {
            KVCOMP_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
                ctx.cublas(), CUBLAS_OP_T, CUBLAS_OP_N, C, G, hd, &scale, dense.k.get(), CUDA_R_16F,
                hd, dense.args.seq_stride, q16.get(), CUDA_R_16F, hd, int64_t(G) * hd, &zero,
                sc.get(), CUDA_R_32F, C, int64_t(G) * C, B * KV, CUBLAS_COMPUTE_32F,
                CUBLAS_GEMM_DEFAULT));
          });
          std::vector<uint16_t> base16(q.size());
          dout.download(base16.data(), base16.size() * 2);
          // Fused.
          KvcompAttentionParams p = img.params;
          p.qkv = dq.as<float>();
          p.qkv_stride = int64_t(heads) * hd;
          p.q_col = 0;
          p.out = dout.get();
          const size_t scratch = kvcomp_attention_scratch_bytes(p, C);
          DeviceBuffer dscratch(scratch, "attention scratch");
          KVCOMP_CUDA_CHECK(cudaMemset(dout.get(), 0xff, dout.bytes()));
          nlohmann::json variants;
          double fused_ms = 1e30;
          for (int rep : {32, 1}) {
            KvcompAttentionTuning tune;
            tune.replicas = rep;
            const double ms = timer.median_ms(reps, [&] {
              kvcomp_attention_cuda(ctx, p, C, DType::kF16, dscratch.get(), scratch, tune);
            });
            variants[rep == 32 ? "fused_table_per_lane_ms" : "fused_table_shared_ms"] = ms;
            fused_ms = std::min(fused_ms, ms);
          }
          std::vector<uint16_t> got16(q.size());
          dout.download(got16.data(), got16.size() * 2);
          double err = -1;
          if (check_out) {
            HostKv one = kv;
            one.n_seqs = 1;
            one.len.resize(1);
            const auto want = reference_attention(one, heads, img.k_dec, img.v_dec, q);
            std::vector<float> got(want.size());
            for (size_t i = 0; i < got.size(); ++i) got[i] = fp16_to_float(got16[i]);
            err = rel_err(got, want, want.size());
          }
          const double fp16_bytes = 2.0 * B * KV * double(C) * hd * 2;
          const double comp_bytes = double(img.compressed_bytes + img.window_bytes);
          const double sym_per_s = img.symbols / (fused_ms * 1e-3);
          const double bits = 8.0 * img.compressed_bytes / double(int64_t(B) * KV * 2 * C * hd);
          std::printf(
              "| %d | %d | %d | %.1f | %.0f | %.1f | %.1f | %.0f (%.0f%%) | %.0f | %.1f | "
              "%.2fx | %.2f | %.1e |\n",
              KV, C, B, cublas_ms * 1e3, fp16_bytes / (cublas_ms * 1e-3) / 1e9, qk_ms * 1e3,
              fused_ms * 1e3, comp_bytes / (fused_ms * 1e-3) / 1e9,
              100.0 * comp_bytes / (fused_ms * 1e-3) / 1e9 / copy_gbs, sym_per_s / 1e9,
              instr_rate / sym_per_s, cublas_ms / fused_ms, bits, err);
          std::fflush(stdout);
          nlohmann::json row = {{"kv_heads", KV},
                                {"heads", heads},
                                {"ctx", C},
                                {"batch", B},
                                {"cublas_ms", cublas_ms},
                                {"cublas_qk_ms", qk_ms},
                                {"fused_ms", fused_ms},
                                {"fp16_bytes", fp16_bytes},
                                {"compressed_bytes", img.compressed_bytes},
                                {"window_bytes", img.window_bytes},
                                {"symbols", img.symbols},
                                {"bits_per_value", bits},
                                {"raw_blocks", img.raw_blocks},
                                {"rel_err", err},
                                {"copy_gbs", copy_gbs}};
          row.update(variants);
          rows.push_back(row);
        }
    if (!json_out.empty()) {
      std::ofstream(json_out) << nlohmann::json{
          {"device", pr.name},
          {"copy_gbs", copy_gbs},
          {"rows", rows}}.dump(2);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kvcomp_bench_attention: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
