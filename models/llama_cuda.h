// The GPU backend: weights on the GPU in their checkpoint dtype (bf16/fp16; fp32 checkpoints are
// converted to bf16), projections and MLP as cuBLAS GEMMs with fp32 accumulation, the residual
// stream in fp32, and attention through the KV cache's own path.
#pragma once

#include <memory>

#include "models/engine.h"
#include "models/model_files.h"

namespace kvcomp {

std::unique_ptr<Engine> make_cuda_engine(const ModelFiles& files);
// A model of the given shape with deterministic random weights generated on the GPU (for
// benchmarks: no files needed, any size that fits).
std::unique_ptr<Engine> make_cuda_engine_random(const LlamaConfig& cfg, uint64_t seed);

}  // namespace kvcomp
