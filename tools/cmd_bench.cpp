// kvcomp bench: prefill and decode speed, KV bytes and peak GPU memory, one row per
// (kv mode, batch, context), as a table and as JSON.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "models/engine.h"
#include "models/model_files.h"
#include "runtime/error.h"
#include "tools/cli_common.h"
#include "tools/commands.h"

#ifdef KVCOMP_HAVE_CUDA
#include "models/llama_cuda.h"
#include "runtime/device_buffer.h"
#endif

namespace kvcomp::cli {

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

using Measure = std::function<nlohmann::json(const std::string&, int, int, bool)>;

// bench --fit: for each mode and context, the largest batch whose cache fits the GPU, found by
// allocating (every try starts a batch, prefills the first sequence and gives the others copies
// of its cache, then runs the decode steps), and the decode speed at that batch.
void fit_rows(Engine& engine, const std::vector<std::string>& modes, const std::vector<int>& ctxs,
              const Measure& measure, nlohmann::json& rows, bool json) {
#ifdef KVCOMP_HAVE_CUDA
  check(runs_on_gpu(engine), "--fit: needs the GPU (--device cuda or auto)");
  const double GiB = 1024.0 * 1024 * 1024;
  if (!json) {
    std::printf("| %-11s | %7s | %9s | %12s | %9s | %12s | %12s | %10s |\n", "kv", "ctx",
                "max batch", "decode t/s", "step ms", "KV rsvd GiB", "per seq MiB", "peak GiB");
    std::printf("|%s|%s|%s|%s|%s|%s|%s|%s|\n", std::string(13, '-').c_str(),
                std::string(9, '-').c_str(), std::string(11, '-').c_str(),
                std::string(14, '-').c_str(), std::string(11, '-').c_str(),
                std::string(14, '-').c_str(), std::string(14, '-').c_str(),
                std::string(12, '-').c_str());
  }
  std::vector<std::string> summary;
  for (const auto& mode : modes)
    for (int c : ctxs) {
      engine.start(1, 1, KvOptions{});
      const size_t base = device_bytes_allocated(), free0 = device_bytes_free();
      nlohmann::json out = {{"kv", mode}, {"ctx", c}, {"max_batch", 0}};
      const nlohmann::json r1 = measure(mode, 1, c, true);
      if (r1.contains("error")) {
        out["error"] = r1["error"];
      } else {
        // The estimate to start from: what one more sequence adds to the peak.
        const nlohmann::json r2 = measure(mode, 2, c, true);
        nlohmann::json best = r2.contains("error") ? r1 : r2, failure;
        const double p1 = double(r1["peak_device_bytes"].get<size_t>()) - double(base);
        const double per = r2.contains("error")
                               ? p1
                               : double(r2["peak_device_bytes"].get<size_t>()) -
                                     double(r1["peak_device_bytes"].get<size_t>());
        int n = std::max(best["batch"].get<int>(),
                         1 + int((double(free0) - p1) / std::max(per, 1.0)));
        if (!r2.contains("error")) {
          // Down from the estimate until a batch fits, then up until one does not.
          for (;;) {
            if (n <= best["batch"].get<int>()) break;
            nlohmann::json r = measure(mode, n, c, true);
            if (!r.contains("error")) {
              best = r;
              break;
            }
            failure = r;
            n -= std::max(1, n / 32);
          }
          for (n = best["batch"].get<int>() + 1; failure.is_null() ||
                                                   failure["batch"].get<int>() > n;
               ++n) {
            nlohmann::json r = measure(mode, n, c, true);
            if (r.contains("error")) {
              failure = r;
              break;
            }
            best = r;
          }
        } else {
          failure = r2;
        }
        out["max_batch"] = best["batch"];
        for (const char* k : {"decode_tokens_per_s", "decode_step_ms_median", "kv_bytes_used",
                              "kv_bytes_reserved", "peak_device_bytes"})
          out[k] = best[k];
        out["kv_bytes_per_sequence"] = int64_t(per);
        if (!failure.is_null()) {
          out["next_batch"] = failure["batch"];
          out["next_batch_error"] = failure["error"];
        }
        char line[256];
        std::snprintf(line, sizeof line, "%s: KV cache %.2f GiB, fits %d sequences of %d tokens",
                      mode.c_str(), best["kv_bytes_reserved"].get<int64_t>() / GiB,
                      best["batch"].get<int>(), c);
        summary.push_back(line);
      }
      if (!json) {
        if (out.contains("error"))
          std::printf("| %-11s | %7d | %9d | %12s | %9s | %12s | %12s | %10s | %s\n", mode.c_str(),
                      c, 0, "-", "-", "-", "-", "-", out["error"].get<std::string>().c_str());
        else
          std::printf("| %-11s | %7d | %9d | %12.1f | %9.2f | %12.2f | %12.1f | %10.2f |\n",
                      mode.c_str(), c, out["max_batch"].get<int>(),
                      out["decode_tokens_per_s"].get<double>(),
                      out["decode_step_ms_median"].get<double>(),
                      out["kv_bytes_reserved"].get<int64_t>() / GiB,
                      out["kv_bytes_per_sequence"].get<int64_t>() / 1048576.0,
                      out["peak_device_bytes"].get<size_t>() / GiB);
        std::fflush(stdout);
      }
      rows.push_back(out);
    }
  if (!json) {
    std::printf("\n");
    for (const auto& l : summary) std::printf("%s\n", l.c_str());
  }
#else
  (void)engine, (void)modes, (void)ctxs, (void)measure, (void)rows, (void)json;
  fail("--fit: needs the GPU, and this build has no CUDA backend");
#endif
}

}  // namespace

void add_bench_command(CLI::App& app) {
  struct Opts {
    CommonOptions common;
    std::string config;
    bool random_weights = false;
    std::string ctx = "512,4096";
    std::string batch = "1";
    int n_decode = 32;
    int warmup = 3;
    uint64_t seed = 0;
    bool json = false;
    bool fit = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Prefill/decode speed, KV bytes and peak GPU memory per (kv, batch, context)");
  add_model_options(cmd, o->common);
  add_kv_options(cmd, o->common);  // --kv takes a comma-separated list here
  cmd->add_option("--config", o->config, "A config.json to benchmark with --random-weights");
  cmd->add_flag("--random-weights", o->random_weights,
                "Random weights of the --config (or --model) shape, generated on the GPU");
  cmd->add_option("--ctx", o->ctx, "Context lengths (prompt tokens), comma-separated; 4k = 4096")
      ->capture_default_str();
  cmd->add_option("--batch", o->batch, "Batch sizes, comma-separated")->capture_default_str();
  cmd->add_option("--n-decode", o->n_decode, "Timed decode steps per row")->capture_default_str();
  cmd->add_option("--warmup", o->warmup, "Untimed decode steps first")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed of the random weights and token ids")
      ->check(non_negative_integer());
  cmd->add_flag("--json", o->json, "Print one JSON object on stdout instead of the table");
  cmd->add_flag("--fit", o->fit,
                "Per kv mode and context: the largest batch that fits the GPU (found by "
                "allocating) and its decode tokens/s (--batch is not used)");

  cmd->callback([o] {
    const auto ctxs = parse_int_list(o->ctx, "--ctx");
    const auto batches = parse_int_list(o->batch, "--batch");
    const auto modes = split_list(o->common.kv);
    check(!modes.empty(), "--kv: no mode given");
    for (const auto& m : modes) parse_kv_mode(m);
    validate(o->common.kv_opts);
    check(o->n_decode >= 1, "--n-decode: expected >= 1, got ", o->n_decode);
    check(o->warmup >= 0, "--warmup: expected >= 0, got ", o->warmup);
    check(o->config.empty() || o->random_weights, "--config needs --random-weights");

    std::unique_ptr<Engine> engine;
    std::string model_name;
    Device device = parse_device(o->common.device);
    if (o->random_weights) {
#ifdef KVCOMP_HAVE_CUDA
      check(device != Device::kCpu, "--random-weights needs the GPU (--device cuda or auto)");
      check(cuda_available(), "--random-weights: no usable CUDA GPU found");
      LlamaConfig cfg;
      if (!o->config.empty()) {
        cfg = parse_llama_config(read_text_file(o->config, "--config"), o->config);
        model_name = o->config + " (random weights)";
      } else {
        cfg = load_llama_config(o->common.model_dir());
        model_name = o->common.model_dir().string() + " (random weights)";
      }
      engine = make_cuda_engine_random(cfg, o->seed);
#else
      fail("--random-weights needs the GPU, and this build has no CUDA backend");
#endif
    } else {
      model_name = o->common.model_dir().string();
      engine = make_engine(o->common.model_dir(), device);
    }
    const LlamaConfig& cfg = engine->config();
#ifdef KVCOMP_HAVE_CUDA
    const bool on_gpu = runs_on_gpu(*engine);
#endif

    for (int c : ctxs)
      if (c + o->warmup + o->n_decode > cfg.max_position_embeddings)
        std::fprintf(stderr,
                     "bench: note: ctx %d + %d decode steps run past the model's "
                     "max_position_embeddings (%d): the timings hold, the positions past it are "
                     "not meaningful text\n",
                     c, o->warmup + o->n_decode, cfg.max_position_embeddings);
    nlohmann::json rows = nlohmann::json::array();
    if (!o->json) std::printf("model: %s\ndevice: %s\n\n", model_name.c_str(), engine->device_name().c_str());
    if (!o->json && !o->fit) {
      std::printf("| %-11s | %5s | %7s | %12s | %12s | %9s | %11s | %11s | %7s | %10s | %s\n", "kv",
                  "batch", "ctx", "prefill t/s", "decode t/s", "step ms", "KV used MiB",
                  "KV rsvd MiB", "ratio", "peak MiB", "note");
      std::printf(
          "|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", std::string(13, '-').c_str(),
          std::string(7, '-').c_str(), std::string(9, '-').c_str(), std::string(14, '-').c_str(),
          std::string(14, '-').c_str(), std::string(11, '-').c_str(), std::string(13, '-').c_str(),
          std::string(13, '-').c_str(), std::string(9, '-').c_str(), std::string(12, '-').c_str());
    }
    std::mt19937 rng(uint32_t(o->seed) + 17);
    std::uniform_int_distribution<int> tok(3, cfg.vocab_size - 1);
    using Clock = std::chrono::steady_clock;
    // One (mode, batch, context) row: a prefill of every sequence (or, with `copy`, of the first
    // one, whose cache the others then receive copies of), then the decode steps. Errors (out of
    // memory among them) go into the row.
    auto measure = [&](const std::string& mode, int b, int c, bool copy) {
      nlohmann::json row = {{"kv", mode}, {"batch", b}, {"ctx", c}};
      try {
        KvOptions kv = o->common.kv_opts;
        kv.mode = parse_kv_mode(mode);
        const int steps = o->warmup + o->n_decode;
#ifdef KVCOMP_HAVE_CUDA
        if (on_gpu) device_reset_peak();
#endif
        engine->start(b, c + steps, kv);
        std::vector<SeqChunk> prompt;
        for (int s = 0; s < (copy ? 1 : b); ++s) {
          std::vector<int> ids(c);
          for (auto& t : ids) t = tok(rng);
          prompt.push_back({s, std::move(ids)});
        }
        std::vector<float> logits;
        if (!copy) {
          // Warm-up: a prefill of the same piece shape loads kernels and cuBLAS heuristics,
          // so the timed prefill below measures steady state.
          engine->start(1, std::min(c, 4096), kv);
          engine->forward({{0, std::vector<int>(prompt[0].tokens.begin(),
                                                prompt[0].tokens.begin() + std::min(c, 4096))}},
                          false, logits);
          engine->start(b, c + steps, kv);
        }
        const auto t0 = Clock::now();
        engine->forward(prompt, false, logits);
        const double prefill_s = std::chrono::duration<double>(Clock::now() - t0).count();
        for (int s = 1; copy && s < b; ++s) engine->copy_sequence(0, s);
        std::vector<double> step_ms;
        for (int i = 0; i < steps; ++i) {
          std::vector<SeqChunk> step;
          for (int s = 0; s < b; ++s) step.push_back({s, {tok(rng)}});
          const auto s0 = Clock::now();
          engine->forward(step, false, logits);
          const double ms = std::chrono::duration<double, std::milli>(Clock::now() - s0).count();
          if (i >= o->warmup) step_ms.push_back(ms);
        }
        const double med = median(step_ms);
        row["prefill_tokens_per_s"] = double(prompt.size()) * c / prefill_s;
        row["prefill_seconds"] = prefill_s;
        row["decode_step_ms_median"] = med;
        row["decode_step_ms_min"] = *std::min_element(step_ms.begin(), step_ms.end());
        row["decode_tokens_per_s"] = b * 1000.0 / med;
        row.update(memory_json(*engine));
        row["kv_bytes_fp16"] = int64_t(b) * (c + steps) * cfg.kv_bytes_per_token_fp16();
        // The ratio a user reads first: the fp16 store of the same batch and context (what the
        // fp16 cache reserves, less its small scratch) over what this cache reserves; then
        // the same over the contents (recent window included).
        row["kv_ratio"] = double(row["kv_bytes_fp16"].get<int64_t>()) /
                          double(std::max<int64_t>(1, row["kv_bytes_reserved"].get<int64_t>()));
        row["kv_ratio_used"] = double(row["kv_bytes_fp16"].get<int64_t>()) /
                               double(std::max<int64_t>(1, row["kv_bytes_used"].get<int64_t>()));
        const KvStats st = engine->kv_stats();
        if (st.compressed) {
          row["k_bits"] = st.k_bits();
          row["v_bits"] = st.v_bits();
          row["ratio_blocks"] = st.ratio();
          row["raw_blocks"] = st.raw_blocks();
        }
      } catch (const Error& e) {
        row["error"] = e.what();
      }
      engine->start(1, 1, KvOptions{});  // release this row's cache
      return row;
    };
    if (o->fit) {
      fit_rows(*engine, modes, ctxs, measure, rows, o->json);
    } else {
      for (const auto& mode : modes)
        for (int b : batches)
          for (int c : ctxs) {
            const nlohmann::json row = measure(mode, b, c, false);
            if (!o->json) {
              if (row.contains("error")) {
                std::printf(
                    "| %-11s | %5d | %7d | %12s | %12s | %9s | %11s | %11s | %7s | %10s | %s\n",
                    mode.c_str(), b, c, "-", "-", "-", "-", "-", "-", "-",
                    row["error"].get<std::string>().c_str());
              } else {
                std::printf(
                    "| %-11s | %5d | %7d | %12.0f | %12.1f | %9.3f | %11.1f | %11.1f | %6.2fx | "
                    "%10s |\n",
                    mode.c_str(), b, c, row["prefill_tokens_per_s"].get<double>(),
                    row["decode_tokens_per_s"].get<double>(),
                    row["decode_step_ms_median"].get<double>(),
                    row["kv_bytes_used"].get<int64_t>() / 1048576.0,
                    row["kv_bytes_reserved"].get<int64_t>() / 1048576.0,
                    row["kv_ratio"].get<double>(),
                    row.contains("peak_device_bytes")
                        ? std::to_string(row["peak_device_bytes"].get<size_t>() >> 20).c_str()
                        : "-");
              }
              std::fflush(stdout);
            }
            rows.push_back(row);
          }
    }
    if (o->json) {
      nlohmann::json j = {{"model", model_name},
                          {"device", engine->device_name()},
                          {"n_decode", o->n_decode},
                          {"warmup", o->warmup},
                          {"rows", rows}};
      std::printf("%s\n", j.dump(2).c_str());
    }
  });
}

}  // namespace kvcomp::cli
