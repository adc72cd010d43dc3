// NVTX ranges, so Nsight Systems and Nsight Compute show prefill, decode steps, layers,
// attention and cache appends by name. Compiled out without CUDA.
#pragma once

#ifdef KVCOMP_HAVE_CUDA
#include <nvtx3/nvToolsExt.h>
#endif

namespace kvcomp {

class NvtxRange {
 public:
#ifdef KVCOMP_HAVE_CUDA
  explicit NvtxRange(const char* name) {
    nvtxRangePushA(name);
  }
  ~NvtxRange() {
    nvtxRangePop();
  }
#else
  explicit NvtxRange(const char*) {}
#endif
  NvtxRange(const NvtxRange&) = delete;
  NvtxRange& operator=(const NvtxRange&) = delete;
};

}  // namespace kvcomp
