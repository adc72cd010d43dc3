// Programmatic dependent launch (Hopper and later): a kernel launched with launch_pdl() may start
// while the kernel before it on the stream is still running, so its launch latency and ramp-up
// overlap that kernel's tail. Such a kernel must call pdl_wait() before it reads anything an
// earlier kernel wrote or writes anything an earlier kernel reads (pdl_wait returns once the
// previous kernel has completed and its writes are visible); before that it may only read
// constant data such as weights. pdl_trigger() lets the next kernel start launching. Both are
// no-ops when the kernel was launched without the attribute or compiled for an older GPU.
// CudaContext::pdl() says whether the attribute is used (KVCOMP_NO_PDL=1 turns it off).
#pragma once

#include <cuda_runtime.h>

#include "runtime/cuda_check.h"
#include "runtime/cuda_context.h"

namespace kvcomp {

__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" :::);
#endif
}

// kernel<<<grid, block, smem, ctx.stream()>>>(args...), with the programmatic-serialization
// attribute when ctx.pdl(). The kernel must follow the rules above.
template <typename... Params, typename... Args>
void launch_pdl(const CudaContext& ctx, void (*kernel)(Params...), dim3 grid, dim3 block,
                size_t smem, Args... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = ctx.stream();
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = ctx.pdl() ? 1 : 0;
  KVCOMP_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, Params(args)...));
}

}  // namespace kvcomp
