#include "models/model_files.h"

#include <cstdio>
#include <cstdlib>

#include "models/llama_tensors.h"
#include "runtime/error.h"

namespace kvcomp {

ModelFiles open_model_files(const std::filesystem::path& dir) {
  check(!std::filesystem::is_regular_file(dir), "--model: ", dir.string(),
        " is a file, expected a model directory (config.json, *.safetensors, tokenizer.model)");
  check(std::filesystem::is_directory(dir), "model directory not found: ", dir.string(),
        " (expected a Hugging Face model directory with config.json, *.safetensors and "
        "tokenizer.model)");
  ModelFiles m;
  m.dir = dir;
  m.config = load_llama_config(dir);
  m.checkpoint = std::make_unique<Checkpoint>(dir);
  check_llama_tensors(m.config, *m.checkpoint);
  const std::string unused =
      unused_tensors_warning(dir.string(), unused_llama_tensors(m.config, *m.checkpoint));
  if (!unused.empty()) std::fprintf(stderr, "kvcomp: warning: %s\n", unused.c_str());
  return m;
}

std::filesystem::path default_model_dir() {
  if (const char* env = std::getenv("KVCOMP_MODEL"); env && *env) return env;
  return KVCOMP_DEMO_MODEL_DIR;
}

}  // namespace kvcomp
