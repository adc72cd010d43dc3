#include "runtime/cuda_context.h"

#include <cstdlib>

#include "runtime/cuda_check.h"

namespace kvcomp {

CudaContext::CudaContext(int device) : device_(device) {
  KVCOMP_CUDA_CHECK(cudaSetDevice(device));
  KVCOMP_CUDA_CHECK(cudaGetDeviceProperties(&props_, device));
  KVCOMP_CUDA_CHECK(cudaStreamCreate(&stream_));
  KVCOMP_CUBLAS_CHECK(cublasCreate(&cublas_));
  KVCOMP_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
  cublas_workspace_ = DeviceBuffer(size_t(32) << 20, "the cuBLAS workspace");
  KVCOMP_CUBLAS_CHECK(
      cublasSetWorkspace(cublas_, cublas_workspace_.get(), cublas_workspace_.bytes()));
  pdl_ = std::getenv("KVCOMP_NO_PDL") == nullptr && pdl_available(props_, stream_);
}

CudaContext::~CudaContext() {
  if (cublas_) cublasDestroy(cublas_);
  if (stream_) cudaStreamDestroy(stream_);
}

std::string CudaContext::name() const {
  return props_.name;
}

void CudaContext::synchronize() const {
  KVCOMP_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

}  // namespace kvcomp
