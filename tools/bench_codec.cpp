// kvcomp_bench_codec: throughput of the GPU codec (compress/codec_cuda.h) on K/V data.
//
// Data: [heads, tokens, head_dim] fp16 K and V of one layer on the GPU.
//   --data real (default): the model's own K (after RoPE) and V over its held-out text
//     (tools/real_kv.h, as kvcomp_bench_attention uses them): head h is the stream of
//     (layer, KV head) h % n_streams, from an offset that differs per head, wrapping around.
//   --data synthetic: K with per-channel scales drawn log-normally, per-channel offsets, ~4%
//     outlier channels 8-16x larger, Gaussian values; V with log-normal scales of less spread,
//     no offsets or outliers.
// Codebooks are built as the cache builds them: from the GPU histogram of every block, one per
// stream (K, V) of the layer, or one per head with --codebook-per-head.
// Steps, each timed with CUDA events (warm-up, then the median of --iters runs):
//   histogram  GPU symbol histogram of every block -> codebooks built on the CPU
//   encode     every block into an arena: GB/s of fp16 input
//   decode     every block to fp16 rows: GB/s of fp16 output, and of compressed bytes read
//   copy       device-to-device copy of the same fp16 bytes (read + write), the ceiling
// Then a check of a sample of blocks against the CPU reference: GPU block bytes ==
// encode_block_ref's, GPU decoded fp16 == decode_block_ref's rounded to fp16. A mismatch is an
// error (exit 1).
#include <cuda_runtime_api.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "compress/accounting.h"
#include "compress/codec_cuda.h"
#include "compress/codec_ref.h"
#include "models/model_files.h"
#include "runtime/cuda_check.h"
#include "runtime/cuda_context.h"
#include "runtime/device_buffer.h"
#include "runtime/error.h"
#include "runtime/half.h"
#include "tools/real_kv.h"

namespace kvcomp {
namespace {

struct Options {
  std::string data = "real";  // "real" | "synthetic"
  std::string model;          // real: the model whose K/V are used (default: the demo model)
  int tokens = 32768;
  int heads = 32;
  int head_dim = 128;
  CodecOptions codec;
  int iters = 20;
  int warmup = 3;
  uint64_t seed = 1;  // synthetic data, and the blocks checked
  int check_blocks = 64;
  std::string json_out;  // also write the results as JSON to this file
};

uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
// Uniform in (0, 1) and standard normal values from a counter (reproducible in parallel).
double uniform01(uint64_t key) {
  return (double(mix64(key) >> 11) + 0.5) * 0x1p-53;
}
double gauss(uint64_t key) {
  const double u1 = uniform01(key * 2 + 0), u2 = uniform01(key * 2 + 1);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

// Synthetic K (k_like) or V: [heads, tokens, head_dim] fp16 bits.
std::vector<uint16_t> make_kv(const Options& o, bool k_like) {
  const uint64_t base = mix64(o.seed * 4 + (k_like ? 1 : 2));
  const size_t hd = size_t(o.head_dim), n_tok = size_t(o.tokens);
  std::vector<float> scale(size_t(o.heads) * hd), offset(size_t(o.heads) * hd);
  for (size_t i = 0; i < scale.size(); ++i) {
    const uint64_t key = mix64(base ^ (0x5ca1eull << 32) ^ i);
    scale[i] = float(std::exp((k_like ? 0.8 : 0.4) * gauss(key)));
    offset[i] = k_like ? float(0.5 * gauss(key + 0x1000000)) : 0.0f;
    if (k_like && uniform01(key + 0x2000000) < 0.04) {
      scale[i] *= float(8.0 + 8.0 * uniform01(key + 0x3000000));
    }
  }
  std::vector<uint16_t> out(size_t(o.heads) * n_tok * hd);
  const int64_t rows = int64_t(o.heads) * o.tokens;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const size_t h = size_t(r) / n_tok;
    for (size_t c = 0; c < hd; ++c) {
      const size_t i = size_t(r) * hd + c;
      const float x = offset[h * hd + c] + scale[h * hd + c] * float(gauss(base + i));
      out[i] = float_to_fp16(x);
    }
  }
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

class EventTimer {
 public:
  explicit EventTimer(const CudaContext& ctx) : ctx_(ctx) {
    KVCOMP_CUDA_CHECK(cudaEventCreate(&a_));
    KVCOMP_CUDA_CHECK(cudaEventCreate(&b_));
  }
  ~EventTimer() {
    cudaEventDestroy(a_);
    cudaEventDestroy(b_);
  }
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;
  // Median milliseconds of f() over iters runs after warmup runs.
  template <typename F>
  double median_ms(int warmup, int iters, F&& f) {
    for (int i = 0; i < warmup; ++i) f();
    std::vector<double> ms;
    for (int i = 0; i < iters; ++i) {
      KVCOMP_CUDA_CHECK(cudaEventRecord(a_, ctx_.stream()));
      f();
      KVCOMP_CUDA_CHECK(cudaEventRecord(b_, ctx_.stream()));
      KVCOMP_CUDA_CHECK(cudaEventSynchronize(b_));
      float t = 0;
      KVCOMP_CUDA_CHECK(cudaEventElapsedTime(&t, a_, b_));
      ms.push_back(double(t));
    }
    return median(ms);
  }

 private:
  const CudaContext& ctx_;
  cudaEvent_t a_ = nullptr, b_ = nullptr;
};

// One stream (K or V) of the layer: data, jobs, codebooks, results.
struct Stream {
  const char* name = "";
  BlockKind kind = BlockKind::kKBlock;
  float eb = 0;
  int block = 0;
  int alphabet = 0;
  int cb_first = 0;  // index of its first codebook in the shared list
  std::vector<uint16_t> host;
  DeviceBuffer data, out, slots, jobs, djobs;
  std::vector<EncodeJob> encode_jobs;
  std::vector<uint8_t*> block_ptrs;
  uint64_t compressed = 0;  // block bytes
  CodecBytes acct;
  // Entropy of the symbols, bits per symbol: each codebook's histogram's entropy, summed over
  // the stream's codebooks and divided by its symbols (the bound its codebooks cannot beat).
  double entropy = 0;
  double t_hist = 0, t_encode = 0, t_decode = 0;
  int max_values = 0;
};

void run(const Options& o) {
  validate_codec_options(o.codec);
  check(o.tokens >= 1 && o.heads >= 1, "--tokens and --heads must be >= 1");
  check(o.head_dim >= 1 && o.head_dim <= kCodecMaxHeadDim, "--head-dim ", o.head_dim,
        ": expected 1..", kCodecMaxHeadDim);
  check(o.iters >= 1 && o.warmup >= 0, "--iters >= 1 and --warmup >= 0 expected");
  CudaContext ctx;
  const size_t hd = size_t(o.head_dim);
  const size_t n_values = size_t(o.heads) * size_t(o.tokens) * hd;
  const size_t fp16_bytes = n_values * 2;
  const int per_stream_cbs = o.codec.codebook_per_head ? o.heads : 1;

  // The data: [heads, tokens, head_dim] fp16 bits of K and V.
  std::vector<uint16_t> host[2];
  std::string data_desc;
  nlohmann::json data_json;
  if (o.data == "real") {
    const auto dir = o.model.empty() ? default_model_dir() : std::filesystem::path(o.model);
    std::fprintf(stderr, "running %s over its held-out text for its K/V...\n",
                 dir.string().c_str());
    const RealKv real = load_real_kv(dir, Device::kCuda);
    check(real.head_dim == o.head_dim, "--head-dim ", o.head_dim, ": the K/V of ", dir.string(),
          " have head_dim ", real.head_dim, " (another head_dim needs --data synthetic)");
    for (int si = 0; si < 2; ++si) {
      host[si].resize(n_values);
      const RealKvPart part = si == 0 ? RealKvPart::kK : RealKvPart::kV;
#pragma omp parallel for schedule(static)
      for (int h = 0; h < o.heads; ++h) {
        real_kv_head(real, part, h, o.tokens, host[si].data() + size_t(h) * o.tokens * hd);
      }
    }
    data_desc = "real K/V of " + dir.string() + " (" + std::to_string(real.n_streams()) +
                " streams = " + std::to_string(real.n_layers) + " layers x " +
                std::to_string(real.n_kv_heads) + " KV heads, " + std::to_string(real.tokens) +
                " tokens each; head h = stream h % " + std::to_string(real.n_streams()) + ")";
    data_json = {{"kind", "real"},
                 {"model", dir.string()},
                 {"streams", real.n_streams()},
                 {"stream_tokens", real.tokens}};
  } else if (o.data == "synthetic") {
    std::fprintf(stderr, "generating %zu K and V values...\n", n_values);
    for (int si = 0; si < 2; ++si) host[si] = make_kv(o, si == 0);
    data_desc = "synthetic K/V-like (seed " + std::to_string(o.seed) + ")";
    data_json = {{"kind", "synthetic"}, {"seed", o.seed}};
  } else {
    fail("--data ", o.data, ": expected real or synthetic");
  }

  Stream streams[2];
  streams[0].name = "K";
  streams[0].kind = o.codec.k_kind();
  streams[0].eb = o.codec.eb_k;
  streams[0].block = o.codec.block_k;
  streams[0].alphabet = o.codec.k_alphabet();
  streams[1].name = "V";
  streams[1].kind = o.codec.v_kind();
  streams[1].eb = o.codec.eb_v;
  streams[1].block = o.codec.block_v;
  streams[1].alphabet = o.codec.v_alphabet();

  for (int si = 0; si < 2; ++si) {
    Stream& s = streams[si];
    s.cb_first = si * per_stream_cbs;
    s.host = std::move(host[si]);
    s.data = DeviceBuffer(fp16_bytes, std::string(s.name) + " fp16 input");
    s.data.upload(s.host.data(), fp16_bytes);
    s.out = DeviceBuffer(fp16_bytes, std::string(s.name) + " fp16 decode output");
    const int blocks_per_head = (o.tokens + s.block - 1) / s.block;
    const size_t n_jobs = size_t(o.heads) * size_t(blocks_per_head);
    s.slots = DeviceBuffer(n_jobs * sizeof(uint8_t*), "block slots");
    for (int h = 0; h < o.heads; ++h) {
      for (int b = 0; b < blocks_per_head; ++b) {
        EncodeJob j;
        const int64_t first_row = int64_t(h) * o.tokens + int64_t(b) * s.block;
        j.src = s.data.as<const __half>() + first_row * o.head_dim;
        j.row_stride = o.head_dim;
        j.n_tokens = std::min(s.block, o.tokens - b * s.block);
        j.head_dim = o.head_dim;
        j.kind = uint8_t(s.kind);
        j.eb = s.eb;
        j.codebook = s.cb_first + (o.codec.codebook_per_head ? h : 0);
        j.slot = s.slots.as<uint8_t*>() + s.encode_jobs.size();
        s.max_values = std::max(s.max_values, j.n_tokens * o.head_dim);
        s.encode_jobs.push_back(j);
      }
    }
    for (const EncodeJob& j : s.encode_jobs) check_encode_job(j, 2 * per_stream_cbs, s.max_values);
    s.jobs = DeviceBuffer(n_jobs * sizeof(EncodeJob), "encode jobs");
    s.jobs.upload(s.encode_jobs.data(), n_jobs * sizeof(EncodeJob));
  }

  EventTimer timer(ctx);
  const int n_cbs = 2 * per_stream_cbs;

  // Histograms -> codebooks.
  DeviceBuffer d_hist(size_t(n_cbs) * kMaxAlphabet * sizeof(unsigned long long), "histograms");
  DeviceBuffer d_err(sizeof(int), "histogram error flag");
  d_err.zero();
  for (Stream& s : streams) {
    s.t_hist = timer.median_ms(o.warmup, o.iters, [&] {
      histogram_blocks_cuda(ctx, s.jobs.as<const EncodeJob>(), int(s.encode_jobs.size()),
                            s.alphabet, d_hist.as<unsigned long long>(), n_cbs, d_err.as<int>());
    });
  }
  d_hist.zero();
  for (Stream& s : streams) {
    histogram_blocks_cuda(ctx, s.jobs.as<const EncodeJob>(), int(s.encode_jobs.size()), s.alphabet,
                          d_hist.as<unsigned long long>(), n_cbs, d_err.as<int>());
  }
  ctx.synchronize();
  int err = 0;
  d_err.download(&err, sizeof err);
  check(err == 0, "histogram: error flags ", err);
  std::vector<unsigned long long> hist(size_t(n_cbs) * kMaxAlphabet);
  d_hist.download(hist.data(), hist.size() * sizeof(unsigned long long));
  std::vector<Codebook> cbs;
  for (int si = 0; si < 2; ++si) {
    Stream& s = streams[si];
    double bits = 0;
    uint64_t total = 0;
    for (int c = 0; c < per_stream_cbs; ++c) {
      std::vector<uint64_t> h(size_t(s.alphabet));
      for (int sy = 0; sy < s.alphabet; ++sy) {
        h[size_t(sy)] = hist[size_t(s.cb_first + c) * kMaxAlphabet + size_t(sy)];
      }
      bits += entropy_bits(h.data(), s.alphabet);
      total += std::accumulate(h.begin(), h.end(), uint64_t(0));
      cbs.push_back(Codebook::from_histogram(h.data(), s.alphabet, o.codec.max_code_len));
    }
    s.entropy = total ? bits / double(total) : 0.0;
  }
  const GpuCodebooks gcb(cbs);

  // Encode.
  uint64_t capacity = 0;
  for (const Stream& s : streams) {
    for (const EncodeJob& j : s.encode_jobs) {
      capacity += worst_case_block_bytes(s.kind, uint32_t(j.n_tokens), uint32_t(j.head_dim));
    }
  }
  BlockArenaBuffer arena_buf(capacity, "block arena");
  const BlockArena arena = arena_buf.view();
  for (Stream& s : streams) {
    s.t_encode = timer.median_ms(o.warmup, o.iters, [&] {
      block_arena_reset(ctx, arena);
      encode_blocks_cuda(ctx, s.jobs.as<const EncodeJob>(), int(s.encode_jobs.size()), gcb, arena,
                         s.max_values);
    });
  }
  // The blocks kept: K then V in one arena.
  block_arena_reset(ctx, arena);
  uint64_t used_before = 0;
  for (Stream& s : streams) {
    encode_blocks_cuda(ctx, s.jobs.as<const EncodeJob>(), int(s.encode_jobs.size()), gcb, arena,
                       s.max_values);
    block_arena_check(ctx, arena, "benchmark arena");
    const uint64_t used = block_arena_state(ctx, arena).used;
    s.compressed = used - used_before;
    used_before = used;
    s.block_ptrs.resize(s.encode_jobs.size());
    s.slots.download(s.block_ptrs.data(), s.block_ptrs.size() * sizeof(uint8_t*));
  }
  std::vector<uint8_t> arena_host(used_before);
  KVCOMP_CUDA_CHECK(cudaMemcpy(arena_host.data(), arena.base, used_before, cudaMemcpyDeviceToHost));
  auto host_block = [&](const uint8_t* dev) { return arena_host.data() + (dev - arena.base); };
  for (Stream& s : streams) {
    for (const uint8_t* p : s.block_ptrs) {
      s.acct.add_block(host_block(p),
                       size_t(arena_host.data() + arena_host.size() - host_block(p)));
    }
    for (int c = 0; c < per_stream_cbs; ++c) s.acct.add_codebook(cbs[size_t(s.cb_first + c)]);
  }

  // Decode.
  for (Stream& s : streams) {
    std::vector<DecodeJob> dj(s.encode_jobs.size());
    for (size_t i = 0; i < dj.size(); ++i) {
      const EncodeJob& e = s.encode_jobs[i];
      dj[i].block = s.block_ptrs[i];
      dj[i].codebook = e.codebook;
      dj[i].dst = s.out.as<__half>() + (e.src - s.data.as<const __half>());
      dj[i].dst_row_stride = o.head_dim;
    }
    s.djobs = DeviceBuffer(dj.size() * sizeof(DecodeJob), "decode jobs");
    s.djobs.upload(dj.data(), dj.size() * sizeof(DecodeJob));
    KVCOMP_CUDA_CHECK(cudaMemset(s.out.get(), 0xff, fp16_bytes));
    s.t_decode = timer.median_ms(o.warmup, o.iters, [&] {
      decode_blocks_cuda(ctx, s.djobs.as<const DecodeJob>(), int(dj.size()), gcb, s.max_values,
                         d_err.as<int>());
    });
    ctx.synchronize();
    d_err.download(&err, sizeof err);
    check(err == 0, "decode: error flags ", err);
  }

  // Device-to-device copy of the same bytes.
  const double t_copy = timer.median_ms(o.warmup, o.iters, [&] {
    KVCOMP_CUDA_CHECK(cudaMemcpyAsync(streams[0].out.get(), streams[0].data.get(), fp16_bytes,
                                      cudaMemcpyDeviceToDevice, ctx.stream()));
  });
  const double copy_gbs = 2.0 * double(fp16_bytes) / (t_copy * 1e6);  // read + write
  // The copy overwrote K's decode output: decode K once more for the check.
  decode_blocks_cuda(ctx, streams[0].djobs.as<const DecodeJob>(),
                     int(streams[0].encode_jobs.size()), gcb, streams[0].max_values,
                     d_err.as<int>());
  ctx.synchronize();

  // Check a sample of blocks against the CPU reference.
  std::mt19937_64 pick(o.seed * 7919 + 1);
  int checked = 0;
  for (Stream& s : streams) {
    const int n = std::min<int>(o.check_blocks, int(s.encode_jobs.size()));
    for (int k = 0; k < n; ++k) {
      const size_t i = k == 0 ? s.encode_jobs.size() - 1 : size_t(pick() % s.encode_jobs.size());
      const EncodeJob& e = s.encode_jobs[i];
      const size_t row0 = size_t(e.src - s.data.as<const __half>());
      const size_t nv = size_t(e.n_tokens) * hd;
      std::vector<float> x(nv);
      for (size_t v = 0; v < nv; ++v) x[v] = fp16_to_float(s.host[row0 + v]);
      std::vector<uint8_t> ref;
      const Codebook& cb = cbs[size_t(e.codebook)];
      const EncodedBlock rb =
          encode_block_ref(s.kind, x.data(), e.n_tokens, o.head_dim, hd, s.eb, cb, ref);
      const uint8_t* got = host_block(s.block_ptrs[i]);
      check(std::memcmp(got, ref.data(), rb.bytes) == 0, "check: ", s.name, " block ", i, " (",
            e.n_tokens, " tokens): the GPU encoder's bytes differ from encode_block_ref's");
      const QuantBlock q = decode_block_symbols_ref(ref.data(), ref.size(), cb);
      std::vector<float> y(nv);
      decode_block_ref(ref.data(), ref.size(), cb, y.data(), hd);
      std::vector<uint16_t> dec(nv);
      KVCOMP_CUDA_CHECK(
          cudaMemcpy(dec.data(), s.out.as<uint16_t>() + row0, nv * 2, cudaMemcpyDeviceToHost));
      for (size_t v = 0; v < nv; ++v) {
        const uint16_t want = q.raw() ? q.raw_values[v] : float_to_fp16(y[v]);
        check(dec[v] == want, "check: ", s.name, " block ", i, " value ", v,
              ": GPU decode gives fp16 bits ", dec[v], ", the reference ", want);
      }
      ++checked;
    }
  }

  // Report.
  nlohmann::json j;
  j["device"] = ctx.name();
  j["data"] = data_json;
  j["tokens"] = o.tokens;
  j["heads"] = o.heads;
  j["head_dim"] = o.head_dim;
  j["eb_k"] = o.codec.eb_k;
  j["eb_v"] = o.codec.eb_v;
  j["block_k"] = o.codec.block_k;
  j["block_v"] = o.codec.block_v;
  j["max_code_len"] = o.codec.max_code_len;
  j["k_channelwise"] = o.codec.k_channelwise;
  j["codebook_per_head"] = o.codec.codebook_per_head;
  j["iters"] = o.iters;
  j["copy_ms"] = t_copy;
  j["copy_gbs_read_write"] = copy_gbs;
  j["checked_blocks"] = checked;
  for (const Stream& s : streams) {
    nlohmann::json r;
    const double in_gb = double(fp16_bytes) * 1e-9;
    r["blocks"] = s.encode_jobs.size();
    r["raw_blocks"] = s.acct.n_raw_blocks;
    r["compressed_bytes"] = s.compressed;
    r["bits_per_value"] = s.acct.bits_per_value();
    r["ratio_to_fp16"] = s.acct.ratio_to_fp16();
    r["entropy_bits_per_symbol"] = s.entropy;
    // GB/s of fp16 data (read by histogram and encode, written by decode); *_pct_copy: that
    // against the read + write bandwidth of the copy measured above.
    const double hist_gbs = in_gb / (s.t_hist * 1e-3), enc_gbs = in_gb / (s.t_encode * 1e-3),
                 dec_gbs = in_gb / (s.t_decode * 1e-3);
    r["histogram_ms"] = s.t_hist;
    r["histogram_gbs_in"] = hist_gbs;
    r["histogram_pct_copy"] = 100.0 * hist_gbs / copy_gbs;
    r["encode_ms"] = s.t_encode;
    r["encode_gbs_in"] = enc_gbs;
    r["encode_pct_copy"] = 100.0 * enc_gbs / copy_gbs;
    r["decode_ms"] = s.t_decode;
    r["decode_gbs_out"] = dec_gbs;
    r["decode_pct_copy"] = 100.0 * dec_gbs / copy_gbs;
    r["decode_gbs_compressed"] = double(s.compressed) * 1e-9 / (s.t_decode * 1e-3);
    j[s.name] = r;
  }
  if (!o.json_out.empty()) {
    std::ofstream f(o.json_out);
    f << j.dump(2) << "\n";
    check(bool(f), "--json: cannot write ", o.json_out);
  }
  std::printf("device: %s\n", ctx.name().c_str());
  std::printf("data: %s\n", data_desc.c_str());
  std::printf(
      "shape: %d heads x %d tokens x %d (fp16 K and V, %s each), eb_k %g, eb_v %g, "
      "block_k %d%s, block_v %d, max code length %d, codebook per %s\n",
      o.heads, o.tokens, o.head_dim, format_bytes(double(fp16_bytes)).c_str(), double(o.codec.eb_k),
      double(o.codec.eb_v), o.codec.block_k, o.codec.k_channelwise ? " (channel-wise)" : "",
      o.codec.block_v, o.codec.max_code_len, o.codec.codebook_per_head ? "head" : "layer");
  std::printf("device copy (read + write): %.3f ms, %.0f GB/s\n\n", t_copy, copy_gbs);
  std::printf("| %-2s | %-9s | %9s | %12s | %9s | %s\n", "", "step", "ms", "GB/s", "% copy",
              "bytes counted");
  std::printf("|----|-----------|-----------|--------------|-----------|------------------\n");
  for (const Stream& s : streams) {
    const double in_gb = double(fp16_bytes) * 1e-9;
    auto row = [&](const char* step, double ms, double gbs, const char* what) {
      std::printf("| %-2s | %-9s | %9.3f | %12.1f | %8.1f%% | %s\n", s.name, step, ms, gbs,
                  100.0 * gbs / copy_gbs, what);
    };
    row("histogram", s.t_hist, in_gb / (s.t_hist * 1e-3), "fp16 read");
    row("encode", s.t_encode, in_gb / (s.t_encode * 1e-3), "fp16 read");
    row("decode", s.t_decode, in_gb / (s.t_decode * 1e-3), "fp16 written");
    row("decode", s.t_decode, double(s.compressed) * 1e-9 / (s.t_decode * 1e-3), "compressed read");
  }
  std::printf("\n| %-2s | %9s | %10s | %9s | %12s | %s\n", "", "bits/val", "ratio", "raw blk",
              "entropy b/s", "payload bits/coded value");
  for (const Stream& s : streams) {
    std::printf("| %-2s | %9.3f | %9.2fx | %9llu | %12.3f | %.3f\n", s.name,
                s.acct.bits_per_value(), s.acct.ratio_to_fp16(),
                (unsigned long long)s.acct.n_raw_blocks, s.entropy,
                s.acct.payload_bits_per_coded_value());
  }
  std::printf("\nchecked %d blocks against the CPU reference: identical\n", checked);
}

}  // namespace
}  // namespace kvcomp

int main(int argc, char** argv) {
  kvcomp::Options o;
  CLI::App app{"Throughput of the GPU KVComp codec (encode, decode, histogram) on K/V data",
               "kvcomp_bench_codec"};
  app.add_option("--data", o.data,
                 "real: the model's own K/V over its held-out text; synthetic: K/V-like data")
      ->check(CLI::IsMember({"real", "synthetic"}))
      ->capture_default_str();
  app.add_option("--model", o.model, "Model whose K/V --data real uses (default: demo)");
  app.add_option("--tokens", o.tokens, "Tokens per head")->capture_default_str();
  app.add_option("--heads", o.heads, "KV heads")->capture_default_str();
  app.add_option("--head-dim", o.head_dim, "Values per token and head")->capture_default_str();
  app.add_option("--eb-k", o.codec.eb_k, "Relative error bound of K")->capture_default_str();
  app.add_option("--eb-v", o.codec.eb_v, "Relative error bound of V")->capture_default_str();
  app.add_option("--block-k", o.codec.block_k, "Tokens per K block")->capture_default_str();
  app.add_option("--block-v", o.codec.block_v, "Tokens per V block")->capture_default_str();
  app.add_option("--max-code-len", o.codec.max_code_len, "Longest Huffman code, 1..12")
      ->capture_default_str();
  app.add_flag("--k-channelwise", o.codec.k_channelwise, "K params per channel within a block");
  app.add_flag("--codebook-per-head", o.codec.codebook_per_head, "One codebook per KV head");
  app.add_option("--iters", o.iters, "Timed runs per step (median reported)")
      ->capture_default_str();
  app.add_option("--warmup", o.warmup, "Untimed runs first")->capture_default_str();
  app.add_option("--seed", o.seed, "Seed of the synthetic data and of the blocks checked")
      ->capture_default_str();
  app.add_option("--check-blocks", o.check_blocks,
                 "Blocks of K and of V checked against the CPU reference")
      ->capture_default_str();
  app.add_option("--json", o.json_out, "Also write the results as JSON to this file");
  try {
    app.parse(argc, argv);
    kvcomp::run(o);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kvcomp_bench_codec: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
