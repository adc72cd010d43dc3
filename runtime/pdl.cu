#include "runtime/device_buffer.h"
#include "runtime/pdl.cuh"

namespace kvcomp {
namespace {

// Writes 1 when this file's kernels were compiled with griddepcontrol (every kernel of the
// library is compiled for the same architectures).
__global__ void pdl_probe_kernel(int* out) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  *out = 1;
#else
  *out = 0;
#endif
}

}  // namespace

bool pdl_available(const cudaDeviceProp& props, cudaStream_t stream) {
  if (props.major < 9) return false;
  DeviceBuffer flag(sizeof(int), "a flag");
  pdl_probe_kernel<<<1, 1, 0, stream>>>(flag.as<int>());
  KVCOMP_LAUNCH_CHECK();
  int v = 0;
  flag.download(&v, sizeof v);
  return v == 1;
}

}  // namespace kvcomp
