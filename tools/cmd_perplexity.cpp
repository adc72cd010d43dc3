// kvcomp perplexity: perplexity of a text file under kvcomp's windowed protocol: every window is
// a prefill of its first --prefill tokens followed by teacher-forced decode steps, whatever --kv.
// --kl-divergence compares every next-token distribution with a base run's (--base-kv, or a file
// of --save-logits given as --base-logits): models/kl_divergence.h.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "models/kl_divergence.h"
#include "models/perplexity.h"
#include "runtime/error.h"
#include "runtime/tokenizer.h"
#include "tools/cli_common.h"
#include "tools/commands.h"

namespace kvcomp::cli {

void add_perplexity_command(CLI::App& app) {
  struct Opts {
    CommonOptions common;
    std::string text;
    PerplexityOptions ppl;
    int prefill = kPrefillUnset;  // window_prefill's default
    bool json = false;
    bool kld = false;
    std::string base_kv = "fp16", save_logits, base_logits;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "perplexity", "Perplexity of a text: ids = [BOS] + encode(file), non-overlapping windows");
  add_model_options(cmd, o->common);
  add_kv_options(cmd, o->common);
  add_window_options(cmd, o->text, o->ppl, o->prefill);
  cmd->add_flag("--json", o->json, "Print one JSON object on stdout");
  cmd->add_flag("--kl-divergence", o->kld,
                "Also compare every next-token distribution with the base run's: KL divergence "
                "(mean +- stderr, percentiles), same top-1 token %, perplexity change");
  cmd->add_option("--base-kv", o->base_kv,
                  "--kl-divergence: the --kv mode of the base run, run first in this process "
                  "(fp32 is the exact CPU reference)")
      ->capture_default_str();
  cmd->add_option("--base-logits", o->base_logits,
                  "--kl-divergence: read the base run's log-probabilities from this file "
                  "(written by --save-logits) instead of running it");
  cmd->add_option("--save-logits", o->save_logits,
                  "Write this run's next-token log-probabilities (fp32, every scored token) to "
                  "this file, to serve later runs as --base-logits");

  cmd->callback([o] {
    finish_kv_options(o->common);
    o->ppl.kv = o->common.kv_opts;
    o->ppl.prefill = window_prefill(o->prefill, o->ppl.ctx);
    check(o->kld || o->base_logits.empty(), "--base-logits needs --kl-divergence");
    KvOptions base_kv = o->common.kv_opts;
    base_kv.mode = parse_kv_mode(o->base_kv);
    const std::string text = read_text_file(o->text, "--text");
    const auto dir = o->common.model_dir();
    if (!o->save_logits.empty()) check_writable(o->save_logits, "--save-logits");
    auto engine = make_engine(dir, parse_device(o->common.device));
    const LlamaConfig& cfg = engine->config();
    const Tokenizer tok = load_tokenizer(dir, cfg.bos_token_id);
    const std::vector<int> ids = perplexity_ids(tok, cfg.bos_token_id, text);

    // What identifies this run's predictions (checked against a base file before running).
    LogProbsHeader want;
    std::error_code ec;
    const auto canon = std::filesystem::weakly_canonical(dir, ec);
    want.model = (ec ? dir : canon).string();
    want.text = o->text;
    want.kv = o->common.kv;
    want.ctx = o->ppl.ctx;
    want.prefill = o->ppl.prefill > 0 ? o->ppl.prefill : o->ppl.ctx;
    want.windows = perplexity_windows(ids, o->ppl);
    want.tokens = int64_t(want.windows) * (o->ppl.ctx - 1);
    want.vocab = cfg.vocab_size;
    want.ids_hash = hash_ids(ids);
    auto collector = [](TokenLogProbs& tp) {
      return [&tp](int64_t i, int, const float* logits, int, double lse) {
        tp.set(i, logits, lse);
      };
    };
    TokenLogProbs base;
    if (o->kld && !o->base_logits.empty()) {
      base = load_logprobs(o->base_logits);
      check_logprobs_match(base.header, want, "--base-logits " + o->base_logits);
    } else if (o->kld) {
      LogProbsHeader bh = want;
      bh.kv = o->base_kv;
      base = TokenLogProbs(bh);
      PerplexityOptions bo = o->ppl;
      bo.kv = base_kv;
      bo.on_token = collector(base);
      ProgressBar bb("base run (" + o->base_kv + ")");
      perplexity(*engine, ids, bo, [&](int done, int total) { bb.update(done, total, "windows"); });
      bb.finish();
    }
    TokenLogProbs saved(o->save_logits.empty() ? LogProbsHeader{} : want);
    std::unique_ptr<KldAccumulator> acc;
    if (o->kld) acc = std::make_unique<KldAccumulator>(base);
    if (acc || !o->save_logits.empty()) {
      o->ppl.on_token = [&](int64_t i, int target, const float* logits, int vocab, double lse) {
        if (acc) acc->add(i, target, logits, vocab, lse);
        if (!o->save_logits.empty()) saved.set(i, logits, lse);
      };
    }

    ProgressBar bar("perplexity");
    const PerplexityResult r = perplexity(
        *engine, ids, o->ppl, [&](int done, int total) { bar.update(done, total, "windows"); });
    bar.finish();
    if (!o->save_logits.empty()) save_logprobs(o->save_logits, saved);
    KldSummary k;
    if (acc) k = acc->summary();
    if (o->json) {
      nlohmann::json j = {
          {"ppl", r.ppl},          {"mean_nll", r.mean_nll},
          {"tokens", r.tokens},    {"windows", r.windows},
          {"ctx", o->ppl.ctx},     {"prefill", o->ppl.prefill > 0 ? o->ppl.prefill : o->ppl.ctx},
          {"kv", o->common.kv},    {"device", engine->device_name()},
          {"model", dir.string()}, {"text", o->text},
          {"seconds", r.seconds}};
      j.update(memory_json(*engine));
      j["kv_bytes_used"] = r.kv_bytes_used;  // the largest window's, not the cache after reset
      j["kv_bytes_reserved"] = r.kv_bytes_reserved;
      if (acc) {
        j["kld_base"] = base.header.kv;
        j["kld_mean"] = k.mean;
        j["kld_stderr"] = k.stderr_;
        j["kld_median"] = k.median;
        j["kld_p90"] = k.p90;
        j["kld_p99"] = k.p99;
        j["kld_p999"] = k.p999;
        j["kld_max"] = k.max;
        j["same_top1_pct"] = k.same_top1_pct;
        j["ppl_base"] = k.ppl_base;
        j["delta_ppl"] = k.delta_ppl;
        j["delta_ppl_stderr"] = k.delta_ppl_stderr;
      }
      if (r.kv.compressed) {
        j["k_bits"] = r.kv.k_bits();
        j["v_bits"] = r.kv.v_bits();
        j["ratio"] = r.kv.ratio();
        j["ratio_with_window"] = r.kv.ratio_with_window();
        j["raw_blocks"] = r.kv.raw_blocks();
      }
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf(
          "perplexity %.4f  (mean NLL %.5f over %lld tokens, %d windows of %d, prefill "
          "%d, kv %s, %.1f s)\n",
          r.ppl, r.mean_nll, static_cast<long long>(r.tokens), r.windows, o->ppl.ctx,
          o->ppl.prefill > 0 ? o->ppl.prefill : o->ppl.ctx, o->common.kv.c_str(), r.seconds);
      if (r.kv.compressed) {
        std::printf(
            "KV cache at the end of each window (summed over windows): K %.3f, V %.3f bits "
            "per value; ratio to fp16 %.2fx (recent window excluded), %.2fx (included); "
            "%llu raw blocks\n",
            r.kv.k_bits(), r.kv.v_bits(), r.kv.ratio(), r.kv.ratio_with_window(),
            static_cast<unsigned long long>(r.kv.raw_blocks()));
      }
      if (acc) {
        std::printf(
            "KL divergence from %s over %lld tokens: mean %.3e +- %.1e, median %.3e, p90 %.3e, "
            "p99 %.3e, p99.9 %.3e, max %.3e; same top-1 token %.2f%%; perplexity %.4f vs %.4f: "
            "%+.4f +- %.4f\n",
            base.header.kv.c_str(), static_cast<long long>(k.tokens), k.mean, k.stderr_,
            k.median, k.p90, k.p99, k.p999, k.max, k.same_top1_pct, k.ppl, k.ppl_base,
            k.delta_ppl, k.delta_ppl_stderr);
      }
    }
  });
}

}  // namespace kvcomp::cli
