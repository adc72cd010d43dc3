// kvcomp_bench_attention: decode attention alone, on K/V with real statistics (the demo model's
// own K and V over its held-out text, laid out as n_kv_heads heads of ctx tokens), each path
// timed through exactly the call the runtime makes for it:
//   kvcomp      the fused kernel over the compressed cache (kvcomp_attention_cuda, --kv kvcomp)
//   kvcomp_fixed the same kernel over the same symbols in fixed-length codes (--kv kvcomp-fixed)
//   fp16        split-K flash decoding over the fp16 cache (decode_attention_cuda, --kv fp16)
//   fp16_cublas cuBLAS GEMMs + softmax over the same cache (dense_attention_cuda, --kv fp16-cublas)
// Every output is checked against attention in double over the values the path reads (the
// decoded cache, or the fp16-rounded K/V), for every sequence of the batch. CUDA events, warm-up,
// median of --reps with L2 flushed before each; device copy bandwidth measured in the same run.
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
#include "runtime/attention_decode.h"
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

// Worst relative error (L2 over one sequence's output) of any of the first n_seqs sequences of
// got16 (fp16 [seq][heads * hd]) against want (one sequence); NaN when an output is not finite.
double worst_seq_err(const std::vector<uint16_t>& got16, const std::vector<float>& want,
                     int n_seqs) {
  double worst = 0;
  const size_t n = want.size();
  for (int s = 0; s < n_seqs; ++s) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; ++i) {
      const double g = fp16_to_float(got16[s * n + i]);
      num += (g - want[i]) * (g - want[i]);
      den += double(want[i]) * want[i];
    }
    const double e = std::sqrt(num / den);
    if (!std::isfinite(e)) return NAN;
    worst = std::max(worst, e);
  }
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Decode attention on real K/V statistics: fused KVComp vs fp16 flash decoding vs "
      "fp16 cuBLAS"};
  std::string ctxs = "4k,16k,32k,64k,128k", batches = "1,8,16", kvh = "32,8", json_out;
  int heads = 32, reps = 30, max_ctx_b16 = 32768;
  std::string model;
  ImageOptions io;
  bool check_out = true, bad = false;
  app.add_option("--ctx", ctxs, "Context lengths")->capture_default_str();
  app.add_option("--batch", batches, "Batch sizes")->capture_default_str();
  app.add_option("--kv-heads", kvh, "KV head counts")->capture_default_str();
  app.add_option("--heads", heads, "Query heads")->capture_default_str();
  app.add_option("--reps", reps, "Timed runs per variant (median)")->capture_default_str();
  app.add_option("--max-ctx-batch16", max_ctx_b16, "Batches above 8 run only up to this context")
      ->capture_default_str();
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
    double copy_gbs = 0;
    {
      DeviceBuffer c1(size_t(1) << 31, "copy test"), c2(size_t(1) << 31, "copy test");
      const double copy_ms = timer.median_ms(10, [&] {
        KVCOMP_CUDA_CHECK(cudaMemcpyAsync(c2.get(), c1.get(), c1.bytes(), cudaMemcpyDeviceToDevice,
                                          ctx.stream()));
      });
      copy_gbs = 2.0 * c1.bytes() / (copy_ms * 1e-3) / 1e9;
    }
    const auto& pr = ctx.props();
    int clock_khz = 0;
    cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, 0);
    const double instr_rate =
        double(pr.multiProcessorCount) * 4 * 32 * clock_khz * 1e3;  // thread-instr/s
    std::printf(
        "%s: copy %.0f GB/s (read+write); %d SMs at %.2f GHz: %.1f T thread-instructions/s\n\n",
        pr.name, copy_gbs, pr.multiProcessorCount, clock_khz / 1e6, instr_rate / 1e12);
    std::printf(
        "| kv heads | ctx | batch | kvcomp us | kvcomp-fixed us | fp16 flash us | fp16 cuBLAS us | "
        "kvcomp GB/s (%% copy) | fixed GB/s (%% copy) | fp16 flash GB/s (%% copy) | Gsym/s | "
        "instr/sym | flash / kvcomp | flash / fixed | bits/val blocks | with window | fixed "
        "bits/val blocks | rel err kvcomp / fixed / flash / cuBLAS | fixed, FMA paths us |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    nlohmann::json rows = nlohmann::json::array();
    const std::vector<int> batch_list = parse_list(batches);
    for (int KV : parse_list(kvh))
      for (int C : parse_list(ctxs)) {
        // One image per (KV heads, ctx) for the largest batch that runs at this context; a batch
        // of B uses its first B sequences. Every sequence holds its own copy of the same data
        // (head h reads stream h % n from an offset that differs per head).
        int maxB = 0;
        for (int B : batch_list)
          if (B <= 8 || C <= max_ctx_b16) maxB = std::max(maxB, B);
        if (maxB == 0) continue;
        HostKv kv;
        kv.n_seqs = maxB;
        kv.n_unique = 1;
        kv.n_kv_heads = KV;
        kv.head_dim = hd;
        kv.len.assign(maxB, C);
        for (int h = 0; h < KV; ++h) {
          std::vector<float> k(size_t(C) * hd), v(size_t(C) * hd);
          real_kv_head(real, RealKvPart::kK, h, C, k.data());
          real_kv_head(real, RealKvPart::kV, h, C, v.data());
          kv.k.push_back(std::move(k));
          kv.v.push_back(std::move(v));
        }
        KvcompImage img = build_kvcomp_image(kv, heads, io);
        ImageOptions iof = io;
        iof.codec.fixed_codes = true;
        KvcompImage imgf = build_kvcomp_image(kv, heads, iof);
        DenseImage dense = build_dense_image(kv);
        // The same query for every sequence, so that every sequence's output has one reference.
        std::mt19937_64 rng(C + KV);
        std::normal_distribution<float> nd(0.0f, 1.0f);
        std::vector<float> q1(size_t(heads) * hd), q(size_t(maxB) * heads * hd);
        for (auto& x : q1) x = nd(rng);
        for (int s = 0; s < maxB; ++s) std::copy(q1.begin(), q1.end(), q.begin() + s * q1.size());
        std::vector<float> want_kvcomp, want_fixed, want_fp16;
        if (check_out) {
          HostKv one = kv;
          one.n_seqs = 1;
          one.len.resize(1);
          want_kvcomp = reference_attention(one, heads, img.k_dec, img.v_dec, q1);
          want_fixed = reference_attention(one, heads, imgf.k_dec, imgf.v_dec, q1);
          std::vector<std::vector<float>> k16 = kv.k, v16 = kv.v;
          for (auto* set : {&k16, &v16})
            for (auto& head : *set)
              for (auto& x : head) x = round_fp16(x);
          want_fp16 = reference_attention(one, heads, k16, v16, q1);
        }
        DeviceBuffer dq(q.size() * 4, "queries"), dout(q.size() * 2, "output");
        dq.upload(q.data(), q.size() * 4);
        const int64_t per_seq_blocks = img.compressed_bytes / maxB;
        const int64_t per_seq_blocks_fixed = imgf.compressed_bytes / maxB;
        const int64_t per_seq_window = img.window_bytes / maxB;
        for (int B : batch_list) {
          if (B > maxB) continue;
          auto check_out16 = [&](const std::vector<float>& want) {
            ctx.synchronize();
            std::vector<uint16_t> got16(size_t(B) * heads * hd);
            dout.download(got16.data(), got16.size() * 2);
            KVCOMP_CUDA_CHECK(cudaMemset(dout.get(), 0xff, dout.bytes()));  // poison for the next
            return check_out ? worst_seq_err(got16, want, B) : -1.0;
          };
          KVCOMP_CUDA_CHECK(cudaMemset(dout.get(), 0xff, dout.bytes()));
          // fp16, flash decoding: the dense cache's decode call.
          DecodeAttentionParams fp;
          fp.n_heads = heads;
          fp.n_kv_heads = KV;
          fp.head_dim = hd;
          fp.scale = 1.0f / std::sqrt(float(hd));
          fp.qkv = dq.as<float>();
          fp.qkv_stride = int64_t(heads) * hd;
          fp.n_chunks = B;
          fp.chunk_seq = dense.chunk_seq.as<int>();
          fp.seq_len = img.seq_len.as<int>();
          fp.ring_k = dense.k.as<uint16_t>();
          fp.ring_v = dense.v.as<uint16_t>();
          fp.cap_k = fp.cap_v = dense.cap;
          fp.out = dout.get();
          DeviceBuffer fscratch(decode_attention_scratch_bytes(fp, C), "attention scratch");
          const double flash_ms = timer.median_ms(reps, [&] {
            decode_attention_cuda(ctx, fp, C, DType::kF16, fscratch.get(), fscratch.bytes());
          });
          const double err_flash = check_out16(want_fp16);
          // fp16, cuBLAS GEMMs: the fp16-cublas cache's decode call.
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
          const double err_cublas = check_out16(want_fp16);
          // Fused KVComp, Huffman codes and fixed-length codes.
          auto fused = [&](const KvcompImage& im, const std::vector<float>& want, double& err,
                           const KvcompAttentionTuning& tune = {}) {
            KvcompAttentionParams p = im.params;
            p.n_chunks = B;
            p.qkv = dq.as<float>();
            p.qkv_stride = int64_t(heads) * hd;
            p.q_col = 0;
            p.out = dout.get();
            DeviceBuffer kscratch(kvcomp_attention_scratch_bytes(p, C), "attention scratch");
            const double ms = timer.median_ms(reps, [&] {
              kvcomp_attention_cuda(ctx, p, C, DType::kF16, kscratch.get(), kscratch.bytes(),
                                    tune);
            });
            err = check_out16(want);
            return ms;
          };
          double err_fused = 0, err_fixed = 0, err_fma = 0;
          const double fused_ms = fused(img, want_kvcomp, err_fused);
          KvcompAttentionTuning mma, fma;  // kvcomp-fixed with and without tensor-core tiles
          mma.mma_tiles = true;
          fma.mma_tiles = false;
          const double fixed_ms = fused(imgf, want_fixed, err_fixed, mma);
          const double fma_ms = fused(imgf, want_fixed, err_fma, fma);

          const double fp16_bytes = 2.0 * B * KV * double(C) * hd * 2;
          const double blocks = double(per_seq_blocks) * B, window = double(per_seq_window) * B;
          const double values = double(B) * KV * 2 * C * hd;
          const double symbols = double(img.symbols) / maxB * B;
          const double sym_per_s = symbols / (fused_ms * 1e-3);
          const double gbs = (blocks + window) / (fused_ms * 1e-3) / 1e9;
          const double flash_gbs = fp16_bytes / (flash_ms * 1e-3) / 1e9;
          const double bits_blocks = 8.0 * blocks / (values - window / 2),
                       bits_all = 8.0 * (blocks + window) / values;
          const double blocks_fixed = double(per_seq_blocks_fixed) * B;
          const double bits_fixed = 8.0 * blocks_fixed / (values - window / 2);
          const double fixed_gbs = (blocks_fixed + window) / (fixed_ms * 1e-3) / 1e9;
          std::printf(
              "| %d | %d | %d | %.1f | %.1f | %.1f | %.1f | %.0f (%.0f%%) | %.0f (%.0f%%) | %.0f "
              "(%.0f%%) | %.0f | %.1f | %.2fx | %.2fx | %.2f | %.2f | %.2f | %.1e / %.1e / %.1e / "
              "%.1e | %.1f |\n",
              KV, C, B, fused_ms * 1e3, fixed_ms * 1e3, flash_ms * 1e3, cublas_ms * 1e3, gbs,
              100.0 * gbs / copy_gbs, fixed_gbs, 100.0 * fixed_gbs / copy_gbs, flash_gbs,
              100.0 * flash_gbs / copy_gbs, sym_per_s / 1e9, instr_rate / sym_per_s,
              flash_ms / fused_ms, flash_ms / fixed_ms, bits_blocks, bits_all, bits_fixed,
              err_fused, err_fixed, err_flash, err_cublas, fma_ms * 1e3);
          std::fflush(stdout);
          rows.push_back(
              {{"kv_heads", KV},
               {"heads", heads},
               {"ctx", C},
               {"batch", B},
               {"us",
                {{"kvcomp", fused_ms * 1e3},
                 {"kvcomp_fixed", fixed_ms * 1e3},
                 {"kvcomp_fixed_fma", fma_ms * 1e3},
                 {"fp16", flash_ms * 1e3},
                 {"fp16_cublas", cublas_ms * 1e3}}},
               {"rel_err",
                {{"kvcomp", err_fused},
                 {"kvcomp_fixed", err_fixed},
                 {"kvcomp_fixed_fma", err_fma},
                 {"fp16", err_flash},
                 {"fp16_cublas", err_cublas}}},
               {"fp16_bytes", fp16_bytes},
               {"block_bytes", blocks},
               {"window_bytes", window},
               {"bits_per_value_blocks", bits_blocks},
               {"bits_per_value_with_window", bits_all},
               {"block_bytes_fixed", blocks_fixed},
               {"bits_per_value_blocks_fixed", bits_fixed},
               {"symbols", symbols},
               {"raw_blocks", img.raw_blocks / maxB * B},
               {"copy_gbs", copy_gbs}});
          if (check_out &&
              !(err_fused < 2e-3 && err_fixed < 2e-3 && err_fma < 2e-3 && err_flash < 3e-3 && err_cublas < 3e-3)) {
            std::fprintf(stderr,
                         "kvcomp_bench_attention: kv heads %d, ctx %d, batch %d: an output "
                         "differs from the reference (relative errors above)\n",
                         KV, C, B);
            bad = true;
          }
        }
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
  return bad ? 1 : 0;
}
