// kvcomp inspect: what a model directory holds and what it costs to run.
#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "models/model_files.h"
#include "runtime/error.h"
#include "runtime/tokenizer.h"
#include "runtime/units.h"
#include "tools/cli_common.h"
#include "tools/commands.h"

namespace kvcomp::cli {

namespace {
const char* rope_name(RopeType t) {
  switch (t) {
    case RopeType::kDefault:
      return "default";
    case RopeType::kLinear:
      return "linear";
    case RopeType::kLlama3:
      return "llama3";
  }
  return "?";
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  struct Opts {
    std::string model;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("inspect", "Describe a model: architecture, sizes, KV bytes");
  cmd->add_option("--model,-m", o->model, "Model directory (default: the embedded demo model)");
  cmd->add_flag("--json", o->json, "Print one JSON object on stdout");
  cmd->callback([o] {
    const auto dir = o->model.empty() ? default_model_dir() : std::filesystem::path(o->model);
    const ModelFiles m = open_model_files(dir);
    const LlamaConfig& c = m.config;
    std::map<std::string, int64_t> dtype_params;
    int64_t weight_bytes = 0;
    for (const auto& [name, t] : m.checkpoint->tensors()) {
      dtype_params[dtype_name(t->dtype)] += t->numel();
      weight_bytes += int64_t(t->nbytes);
    }
    std::string dtypes;
    for (const auto& [d, n] : dtype_params) dtypes += (dtypes.empty() ? "" : ", ") + d;
    // The tokenizer that the other commands would use, or why there is none.
    std::string tok_desc, tok_error;
    try {
      tok_desc = load_tokenizer(dir, c.bos_token_id).describe();
      if (std::filesystem::exists(dir / "tokenizer.json") && std::filesystem::exists(dir / "tokenizer.model"))
        tok_desc += " (tokenizer.model is also there and is not used)";
    } catch (const Error& e) {
      tok_error = e.what();
    }
    const int64_t kv_tok = c.kv_bytes_per_token_fp16();
    if (o->json) {
      nlohmann::json j = {{"model", dir.string()},
                          {"architecture", c.architecture},
                          {"vocab_size", c.vocab_size},
                          {"hidden_size", c.hidden_size},
                          {"intermediate_size", c.intermediate_size},
                          {"n_layers", c.n_layers},
                          {"n_heads", c.n_heads},
                          {"n_kv_heads", c.n_kv_heads},
                          {"head_dim", c.head_dim},
                          {"max_position_embeddings", c.max_position_embeddings},
                          {"rope_type", rope_name(c.rope.type)},
                          {"rope_theta", c.rope.theta},
                          {"tie_word_embeddings", c.tie_word_embeddings},
                          {"n_params", c.n_params()},
                          {"dtypes", dtypes},
                          {"weight_bytes", weight_bytes},
                          {"kv_bytes_per_token_fp16", kv_tok},
                          {"tokenizer", tok_error.empty() ? nlohmann::json(tok_desc) : nlohmann::json()},
                          {"tokenizer_error", tok_error.empty() ? nlohmann::json() : nlohmann::json(tok_error)}};
      std::printf("%s\n", j.dump(2).c_str());
      return;
    }
    std::printf("model          %s\n", dir.string().c_str());
    std::printf("architecture   %s\n", c.architecture.c_str());
    std::printf("layers         %d\n", c.n_layers);
    std::printf("hidden         %d (intermediate %d)\n", c.hidden_size, c.intermediate_size);
    std::printf("heads          %d query, %d key/value (group of %d), head_dim %d\n", c.n_heads,
                c.n_kv_heads, c.group_size(), c.head_dim);
    std::printf("vocabulary     %d%s\n", c.vocab_size,
                c.tie_word_embeddings ? " (lm_head tied to the embeddings)" : "");
    std::printf("context        %d positions; RoPE %s, theta %g", c.max_position_embeddings,
                rope_name(c.rope.type), double(c.rope.theta));
    if (c.rope.type != RopeType::kDefault) std::printf(", factor %g", double(c.rope.factor));
    std::printf("\n");
    if (c.sliding_window > 0) std::printf("sliding window %d\n", c.sliding_window);
    std::printf("parameters     %.2f M (%s)\n", c.n_params() / 1e6, dtypes.c_str());
    std::printf("weights        %s on disk\n", format_bytes(double(weight_bytes)).c_str());
    std::printf("KV cache       %s per token in fp16 (%s at %d tokens)\n",
                format_bytes(double(kv_tok)).c_str(),
                format_bytes(double(kv_tok) * c.max_position_embeddings).c_str(),
                c.max_position_embeddings);
    std::printf("tokenizer      %s\n", tok_error.empty() ? tok_desc.c_str() : tok_error.c_str());
  });
}

}  // namespace kvcomp::cli
