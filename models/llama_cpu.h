// The CPU backend: the whole Llama forward in fp32 over runtime/ops_ref.h. It is the reference
// the GPU backend is tested against.
#pragma once

#include <memory>

#include "models/engine.h"
#include "models/model_files.h"

namespace kvcomp {

std::unique_ptr<Engine> make_cpu_engine(const ModelFiles& files);

}  // namespace kvcomp
