#include "models/engine.h"

#include "models/llama_cpu.h"
#include "models/model_files.h"
#include "runtime/error.h"

#ifdef KVCOMP_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "models/llama_cuda.h"
#endif

namespace kvcomp {

void Engine::copy_sequence(int /*from*/, int /*to*/) {
  fail("copy_sequence: not available on ", device_name(), " (GPU engines only)");
}

std::string nonfinite_where(const Engine& e) {
  const int l = e.nonfinite_layer();
  if (l < 0) return "";
  return ", first in the output of layer " + std::to_string(l) + " (model.layers." +
         std::to_string(l) + ")";
}

void check_step(const LlamaConfig& cfg, const std::vector<int>& len, int max_tokens,
                const std::vector<SeqChunk>& chunks) {
  std::vector<int> seen(len.size(), 0);
  for (const auto& c : chunks) {
    check(c.seq >= 0 && c.seq < int(len.size()), "sequence ", c.seq, " is outside the batch of ",
          len.size());
    check(!seen[c.seq]++, "sequence ", c.seq, " appears twice in one step");
    check(!c.tokens.empty(), "sequence ", c.seq, ": empty chunk");
    const int total = len[c.seq] + int(c.tokens.size());
    check(total <= max_tokens, "sequence ", c.seq, ": ", total, " tokens exceed the context of ",
          max_tokens);
    check(cfg.sliding_window <= 0 || total <= cfg.sliding_window, "sequence ", c.seq, ": ", total,
          " tokens exceed the model's sliding window of ", cfg.sliding_window,
          " (sliding-window attention is not implemented)");
    for (int t : c.tokens)
      check(t >= 0 && t < cfg.vocab_size, "token id ", t, " is outside the vocabulary of ",
            cfg.vocab_size);
  }
}

Device parse_device(const std::string& s) {
  if (s == "auto") return Device::kAuto;
  if (s == "cpu") return Device::kCpu;
  if (s == "cuda") return Device::kCuda;
  fail("--device: unknown device '", s, "' (expected auto, cpu or cuda)");
}

bool cuda_available() {
#ifdef KVCOMP_HAVE_CUDA
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
#else
  return false;
#endif
}

std::unique_ptr<Engine> make_engine(const std::filesystem::path& model_dir, Device device) {
  if (device == Device::kAuto) device = cuda_available() ? Device::kCuda : Device::kCpu;
  if (device == Device::kCuda) {
#ifndef KVCOMP_HAVE_CUDA
    fail(
        "--device cuda: this build of kvcomp has no CUDA backend (configured with "
        "-DKVCOMP_CUDA=OFF)");
#else
    check(cuda_available(), "--device cuda: no usable CUDA GPU found");
    return make_cuda_engine(open_model_files(model_dir));
#endif
  }
  return make_cpu_engine(open_model_files(model_dir));
}

}  // namespace kvcomp
