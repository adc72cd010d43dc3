// The CUDA context of an engine: device, stream, cuBLAS handle. Passed to every launcher.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <string>

#include "runtime/device_buffer.h"

namespace kvcomp {

// True when the GPU and the compiled kernels support programmatic dependent launch
// (runtime/pdl.cu).
bool pdl_available(const cudaDeviceProp& props, cudaStream_t stream);

class CudaContext {
 public:
  explicit CudaContext(int device = 0);
  ~CudaContext();
  CudaContext(const CudaContext&) = delete;
  CudaContext& operator=(const CudaContext&) = delete;

  // A blocking stream: it orders with the synchronous cudaMemcpy of DeviceBuffer.
  int device() const { return device_; }
  cudaStream_t stream() const { return stream_; }
  cublasHandle_t cublas() const { return cublas_; }
  const cudaDeviceProp& props() const { return props_; }
  // Whether kernels launched through launch_pdl (runtime/pdl.cuh) use programmatic dependent
  // launch: a Hopper or later GPU, kernels compiled for it, and KVCOMP_NO_PDL unset.
  bool pdl() const { return pdl_; }
  std::string name() const;
  void synchronize() const;

 private:
  int device_ = 0;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  cudaDeviceProp props_{};
  bool pdl_ = false;
  DeviceBuffer cublas_workspace_;  // given to cuBLAS, so captured GEMMs never allocate
};

}  // namespace kvcomp
