// A model directory opened and checked: config.json parsed, every tensor present with the right
// shape and dtype. Weights are read from the mapping by each backend.
#pragma once

#include <filesystem>
#include <memory>

#include "models/config.h"
#include "models/safetensors.h"

namespace kvcomp {

struct ModelFiles {
  std::filesystem::path dir;
  LlamaConfig config;
  std::unique_ptr<Checkpoint> checkpoint;
};

ModelFiles open_model_files(const std::filesystem::path& dir);

// Where the demo model lives: $KVCOMP_MODEL when set, else the copy next to the sources.
std::filesystem::path default_model_dir();

}  // namespace kvcomp
