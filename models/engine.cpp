#include "models/engine.h"

#include "models/llama_cpu.h"
#include "models/model_files.h"
#include "runtime/error.h"

#ifdef KVCOMP_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "models/llama_cuda.h"
#endif

namespace kvcomp {

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
