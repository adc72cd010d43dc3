// kvcomp tokenize: the token ids of a text, as the model's tokenizer makes them.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "models/config.h"
#include "models/model_files.h"
#include "runtime/error.h"
#include "runtime/tokenizer.h"
#include "tools/cli_common.h"
#include "tools/commands.h"

namespace kvcomp::cli {

void add_tokenize_command(CLI::App& app) {
  struct Opts {
    std::string model, text, file;
    bool no_special = false, json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Print the token ids of a text");
  auto* model = cmd->add_option("--model,-m", o->model,
                  "Model directory, or a directory with only the tokenizer files (default: the "
                  "embedded demo model)");
  auto* text = cmd->add_option("--text,-t", o->text, "The text");
  auto* file = cmd->add_option("--file,-f", o->file, "Read the text from a file ('-': standard input)");
  text->excludes(file);
  cmd->add_flag("--no-special", o->no_special,
                "Leave out the special tokens the tokenizer adds (BOS); special tokens written in "
                "the text are still recognised");
  cmd->add_flag("--json", o->json, "Print the ids as one JSON list");
  cmd->callback([o, model, text, file] {
    check(text->count() + file->count() == 1, "tokenize: give --text or --file");
    check(!model->count() || !o->model.empty(), "--model: an empty path (leave the option out for the demo model)");
    const auto dir = o->model.empty() ? default_model_dir() : std::filesystem::path(o->model);
    check(std::filesystem::exists(dir), "--model: model directory not found: ", dir.string());
    check(std::filesystem::is_directory(dir), "--model ", dir.string(),
          ": not a directory (expected a model directory with tokenizer.json or tokenizer.model)");
    const std::string s = file->count() ? read_text_file(o->file, "--file") : o->text;
    if (!file->count()) check_utf8(s, "--text");
    // bos_token_id from config.json when the directory has one (tokenizer.model needs it).
    const int bos = std::filesystem::exists(dir / "config.json") ? load_llama_config(dir).bos_token_id : -1;
    const Tokenizer tok = load_tokenizer(dir, bos);
    const std::vector<int> ids = o->no_special ? tok.encode_raw(s) : tok.encode(s);
    if (o->json) {
      std::printf("%s\n", nlohmann::json(ids).dump().c_str());
      return;
    }
    for (int id : ids) {
      const std::string piece = tok.piece(id);
      std::printf("%6d -> '%s'\n", id, piece.c_str());
    }
  });
}

}  // namespace kvcomp::cli
