// kvcomp perplexity: perplexity of a text file under kvcomp's windowed protocol: every window is
// a prefill of its first --prefill tokens followed by teacher-forced decode steps, whatever --kv.
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

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
    int prefill = -1;  // -1: window_prefill's default
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "perplexity", "Perplexity of a text: ids = [BOS] + encode(file), non-overlapping windows");
  add_model_options(cmd, o->common);
  add_kv_options(cmd, o->common);
  add_window_options(cmd, o->text, o->ppl, o->prefill);
  cmd->add_flag("--json", o->json, "Print one JSON object on stdout");

  cmd->callback([o] {
    finish_kv_options(o->common);
    o->ppl.kv = o->common.kv_opts;
    o->ppl.prefill = window_prefill(o->prefill, o->ppl.ctx);
    const std::string text = read_text_file(o->text, "--text");
    const auto dir = o->common.model_dir();
    auto engine = make_engine(dir, parse_device(o->common.device));
    const LlamaConfig& cfg = engine->config();
    const Tokenizer tok = load_tokenizer(dir, cfg.bos_token_id);
    const std::vector<int> ids = perplexity_ids(tok, cfg.bos_token_id, text);

    ProgressBar bar("perplexity");
    const PerplexityResult r = perplexity(
        *engine, ids, o->ppl, [&](int done, int total) { bar.update(done, total, "windows"); });
    bar.finish();
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
    }
  });
}

}  // namespace kvcomp::cli
