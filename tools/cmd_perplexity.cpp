// kvcomp perplexity: perplexity of a text file under kvcomp's windowed protocol.
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
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "perplexity", "Perplexity of a text: ids = [BOS] + encode(file), non-overlapping windows");
  add_model_options(cmd, o->common);
  add_kv_options(cmd, o->common);
  cmd->add_option("--text", o->text, "Text file to evaluate")->required();
  cmd->add_option("--ctx", o->ppl.ctx, "Tokens per window")->required();
  cmd->add_option("--max-windows", o->ppl.max_windows, "Evaluate at most this many windows (0: all)")
      ->capture_default_str();
  cmd->add_option("--prefill", o->ppl.prefill,
                  "Tokens of each window run as one prefill; the rest are teacher-forced decode "
                  "steps (default: the whole window)");
  cmd->add_option("--batch", o->ppl.batch, "Windows evaluated together")->capture_default_str();
  cmd->add_flag("--json", o->json, "Print one JSON object on stdout");

  cmd->callback([o] {
    finish_kv_options(o->common);
    o->ppl.kv = o->common.kv_opts;
    const std::string text = read_text_file(o->text, "--text");
    const auto dir = o->common.model_dir();
    auto engine = make_engine(dir, parse_device(o->common.device));
    const LlamaConfig& cfg = engine->config();
    const Tokenizer tok = load_tokenizer(dir, cfg.bos_token_id);
    std::vector<int> ids;
    if (cfg.bos_token_id >= 0) ids.push_back(cfg.bos_token_id);
    const auto body = tok.encode_raw(text);
    ids.insert(ids.end(), body.begin(), body.end());

    ProgressBar bar("perplexity");
    const PerplexityResult r = perplexity(*engine, ids, o->ppl, [&](int done, int total) {
      bar.update(done, total, "windows");
    });
    bar.finish();
    if (o->json) {
      nlohmann::json j = {{"ppl", r.ppl},
                          {"mean_nll", r.mean_nll},
                          {"tokens", r.tokens},
                          {"windows", r.windows},
                          {"ctx", o->ppl.ctx},
                          {"prefill", o->ppl.prefill > 0 ? o->ppl.prefill : o->ppl.ctx},
                          {"kv", o->common.kv},
                          {"device", engine->device_name()},
                          {"model", dir.string()},
                          {"text", o->text},
                          {"seconds", r.seconds}};
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("perplexity %.4f  (mean NLL %.5f over %lld tokens, %d windows of %d, kv %s, "
                  "%.1f s)\n",
                  r.ppl, r.mean_nll, static_cast<long long>(r.tokens), r.windows, o->ppl.ctx,
                  o->common.kv.c_str(), r.seconds);
    }
  });
}

}  // namespace kvcomp::cli
